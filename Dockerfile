# CV Interview Lab — CPU image.
#   docker build -t cv-lab .                       # pretrained weights fetched at build time
#   docker build --build-arg PREFETCH=0 -t cv-lab . # skip that (the app downloads on first use)
# The project's own trained models are shipped in models/trained and copied with the code.
#   docker run -p 8501:8501 cv-lab
# Pinned to an exact Python and Debian release (the lab is tested on Python 3.11); bump on purpose.
FROM python:3.11.13-slim-bookworm

ARG PREFETCH=1
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CVLAB_WEIGHTS=/app/weights \
    YOLO_CONFIG_DIR=/tmp/ultralytics \
    MPLCONFIGDIR=/tmp/matplotlib \
    MALLOC_ARENA_MAX=2 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none
# The file watcher stays on in .streamlit/config.toml (a Cloud app shows pushed code on the next
# rerun); code inside an image never changes, and the watcher's scan of every loaded module
# adds 0.6-1.1 s to each new session's first page here, so the image turns it off.

# g++: torch.compile's inductor backend writes and compiles C++ kernels on the CPU (the
# Frameworks page); without it that page reports why and shows the other runtimes.
# libgl1, libglib2.0-0: what opencv-python (required by ultralytics) links against, as in
# packages.txt for Community Cloud. tini: PID 1, so the worker processes the Distributed
# training and Frameworks pages start are reaped and signals reach Streamlit.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ libgl1 libglib2.0-0 tini \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 lab
WORKDIR /app

# requirements.txt itself takes CPU-only torch from PyTorch's index (a few hundred MB instead of
# several GB of CUDA libraries) and pins both OpenCV wheels to one version: installed unchanged.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=lab:lab . .
RUN mkdir -p "$CVLAB_WEIGHTS" && chown lab:lab /app "$CVLAB_WEIGHTS"
USER lab
RUN if [ "$PREFETCH" = "1" ]; then python -m models.prefetch; fi

# The port is STREAMLIT_SERVER_PORT (docker run -e STREAMLIT_SERVER_PORT=9000 -p 9000:9000 …):
# Streamlit reads it, and the health check asks the same port.
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, sys, urllib.request; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/_stcore/health', timeout=4).read() != b'ok')"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "streamlit", "run", "Home.py"]
