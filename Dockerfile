# CV Interview Lab — CPU image.
#   docker build -t cv-lab .                       # pretrained weights fetched at build time
#   docker build --build-arg PREFETCH=0 -t cv-lab . # skip that (the app downloads on first use)
# The project's own trained models are shipped in models/trained and copied with the code.
#   docker run -p 8501:8501 cv-lab
FROM python:3.11-slim

ARG PREFETCH=1
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CVLAB_WEIGHTS=/app/weights \
    YOLO_CONFIG_DIR=/tmp/ultralytics \
    MPLCONFIGDIR=/tmp/matplotlib \
    MALLOC_ARENA_MAX=2

# g++: torch.compile's inductor backend writes and compiles C++ kernels on the CPU (the
# Frameworks page); without it that page reports why and shows the other runtimes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 lab
WORKDIR /app

# CPU-only torch wheels first (a few hundred MB instead of several GB of CUDA libraries);
# requirements.txt's torch==2.14.1 is then already satisfied by 2.14.1+cpu.
COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install -r requirements.txt \
 && pip uninstall -y opencv-python opencv-python-headless \
 && pip install --no-deps "$(grep -E '^opencv-python-headless' requirements.txt)"

COPY --chown=lab:lab . .
RUN mkdir -p "$CVLAB_WEIGHTS" && chown lab:lab /app "$CVLAB_WEIGHTS"
USER lab
RUN if [ "$PREFETCH" = "1" ]; then python -m models.prefetch; fi

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"
CMD ["python", "-m", "streamlit", "run", "Home.py", "--server.port=8501", "--server.address=0.0.0.0"]
