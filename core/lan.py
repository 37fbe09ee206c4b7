"""The lab on a classroom LAN: is the student's page a secure context (the camera needs one),
and a self-signed HTTPS certificate for the teacher's machine.

Browsers give a page the camera (``getUserMedia``) only in a *secure context*: an ``https://``
page, or an ``http://`` page from the machine itself (``localhost``, ``*.localhost``,
``127.0.0.0/8``, ``[::1]``). A student who opens ``http://192.0.2.2:8501`` gets a camera widget
that can never start, so the sidebar asks :func:`is_secure_context` first::

    url = browser_url(st.context.url, st.context.headers)   # None: unknown (AppTest, old client)
    if url is not None and not is_secure_context(url):
        ...explain, and point to https_url(url)

``scripts/run.sh --https`` serves the lab over HTTPS with a certificate made here (OpenSSL's
command line, no Python package needed)::

    cert, key, made = ensure_certificate(Path(".certs"))     # localhost + this machine's LAN addresses
    python -m core.lan cert .certs                           # the same, for the shell: prints both paths

The certificate names ``localhost``, ``127.0.0.1``, ``::1``, the host name (and
``<name>.local``) and every LAN address (``hostname -I``) as subjectAltName entries, so a
student's browser shows only the usual "not trusted" warning, not a name mismatch as well. It
is remade when it no longer covers the machine's addresses (another network, a new DHCP
lease) or expires within 30 days.

No Streamlit here (core never imports it).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

CERT_NAME, KEY_NAME = "cvlab.crt", "cvlab.key"
DAYS = 825  # Apple's limit for TLS server certificates; browsers warn about self-signed ones anyway
RENEW_WITHIN_S = 30 * 24 * 3600
SUBJECT = "/O=CV Interview Lab/CN=CV Interview Lab (self-signed)"
ALWAYS = ("DNS:localhost", "IP:127.0.0.1", "IP:::1")


# --------------------------------------------------------------------------- secure context


def is_trustworthy_host(host: str) -> bool:
    """Whether browsers treat ``http://host`` as a secure context: the loopback names and
    addresses (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure_context(url: str) -> bool:
    """Whether a page at ``url`` is a secure context, where browsers allow the camera:
    ``https://`` (and ``wss://``) anywhere, ``http://`` (``ws://``) only on a loopback host.
    Anything else (another scheme, no scheme, no host) is not."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname  # lower-cased, without brackets or port
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False
    scheme = parts.scheme.lower()
    if scheme in ("https", "wss"):
        return bool(host)
    if scheme in ("http", "ws"):
        return bool(host) and is_trustworthy_host(host)
    return False


def browser_url(url: str | None, headers: Mapping[str, str] | None = None) -> str | None:
    """The address the student's browser opened: Streamlit's ``st.context.url`` when it has
    one, else the ``Origin`` header of the app's websocket (scheme, host and port), else
    None (unknown, as under AppTest: the caller should just try the camera)."""
    if url:
        return url
    for name, value in (headers or {}).items():
        if name.lower() == "origin" and value and value.strip().lower() != "null":
            return value.strip()
    return None


# Host and port as browsers send them: shown to the student as-is (in a code span), so nothing else.
_NETLOC = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return parts.netloc if _NETLOC.fullmatch(parts.netloc) else None


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL (``http://192.0.2.2:8501/Page?x=1`` -> ``http://192.0.2.2:8501``),
    safe to show verbatim: ``http://<address>`` where the URL has no plain host."""
    netloc = _netloc(url)
    scheme = urlsplit(url.strip()).scheme.lower() if netloc else ""
    return f"{scheme}://{netloc}" if netloc and scheme in ("http", "https", "ws", "wss") else "http://<address>"


def https_url(url: str) -> str:
    """The same host and port over HTTPS, at the app's root (``http://192.0.2.2:8501/Page``
    -> ``https://192.0.2.2:8501/``): what a student should open once the lab serves HTTPS;
    ``https://<address>:8501/`` where the URL has no plain host."""
    return f"https://{_netloc(url) or '<address>:8501'}/"


# --------------------------------------------------------------------------- addresses


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def lan_addresses() -> list[str]:
    """This machine's addresses a student could reach it by (``hostname -I``; where that is
    missing, as on macOS, the address of the default route), loopback and link-local left out."""
    found: list[str] = []
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            found = out.stdout.split()
    except (OSError, subprocess.SubprocessError):
        pass
    if not found:
        for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
            try:  # a UDP "connect" sends nothing: it only asks the kernel which address it would use
                with socket.socket(family, socket.SOCK_DGRAM) as sock:
                    sock.connect((probe, 9))
                    found.append(sock.getsockname()[0])
            except OSError:
                pass
    seen: list[str] = []
    for address in found:
        if _usable(address) and address not in seen:
            seen.append(address)
    return seen


_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")


def _host_names(hostname: str | None) -> list[str]:
    """A host name's DNS entries: itself, and ``<name>.local`` for a bare name; none for
    ``localhost`` (always there) or what is no host name."""
    name = (hostname or "").strip().lower().rstrip(".")
    if not name or name == "localhost" or not _HOSTNAME.fullmatch(name):
        return []
    return [name] if "." in name else [name, f"{name}.local"]  # .local: the name mDNS (Bonjour) answers


def certificate_names(addresses: Iterable[str], hostname: str | None = None) -> list[str]:
    """The subjectAltName entries (``DNS:…``, ``IP:…``) of a certificate for this machine:
    loopback, the host name (and ``<name>.local``) and each address, without duplicates."""
    names = list(ALWAYS)
    for host in _host_names(hostname):
        names.append(f"DNS:{host}")
    for address in addresses:
        address = address.strip()
        try:
            entry = f"IP:{ipaddress.ip_address(address)}"
        except ValueError:
            if not _host_names(address):
                raise ValueError(f"not an IP address or host name: {address!r}") from None
            entry = f"DNS:{address.lower().rstrip('.')}"
        names.append(entry)
    return list(dict.fromkeys(_normal(n) for n in names))


def _normal(entry: str) -> str:
    """``IP:0:0:0:0:0:0:0:1`` and ``IP:::1`` alike as ``IP:::1``; DNS names lower-cased."""
    kind, _, value = entry.partition(":")
    kind = kind.strip().upper()
    value = value.strip()
    if kind in ("IP", "IP ADDRESS"):
        return f"IP:{ipaddress.ip_address(value)}"
    return f"{kind}:{value.lower()}"


# --------------------------------------------------------------------------- the certificate


class CertificateError(RuntimeError):
    pass


def _openssl(*args: str, openssl: str = "openssl") -> subprocess.CompletedProcess:
    exe = shutil.which(openssl) or openssl
    try:
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise CertificateError("openssl is not installed (Debian/Ubuntu: apt-get install openssl)") from None


def make_certificate(cert: Path, key: Path, names: Iterable[str], *, days: int = DAYS,
                     openssl: str = "openssl") -> None:
    """A self-signed RSA-2048 server certificate for ``names`` (subjectAltName entries as
    :func:`certificate_names` gives them) into ``cert``, its key into ``key`` (mode 0600)."""
    names = [_normal(n) for n in names]
    if not names:
        raise ValueError("a certificate needs at least one name")
    cert, key = Path(cert), Path(key)
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    tmp_key = key.with_name(key.name + ".tmp")
    tmp_cert = cert.with_name(cert.name + ".tmp")
    tmp_key.unlink(missing_ok=True)
    os.close(os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # private from the start
    done = _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", str(days),
        "-keyout", str(tmp_key), "-out", str(tmp_cert), "-subj", SUBJECT,
        "-addext", "subjectAltName=" + ",".join(names),
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext", "extendedKeyUsage=serverAuth",
        openssl=openssl,
    )
    if done.returncode != 0:
        tmp_key.unlink(missing_ok=True)
        tmp_cert.unlink(missing_ok=True)
        raise CertificateError(f"openssl could not make the certificate: {done.stderr.strip()}")
    os.chmod(tmp_key, 0o600)
    os.replace(tmp_key, key)
    os.replace(tmp_cert, cert)


def certificate_text(cert: Path, *, openssl: str = "openssl") -> str:
    """``openssl x509 -text`` of a PEM certificate."""
    done = _openssl("x509", "-in", str(cert), "-noout", "-text", openssl=openssl)
    if done.returncode != 0:
        raise CertificateError(f"{cert}: not a readable PEM certificate ({done.stderr.strip()})")
    return done.stdout


def names_in(cert: Path, *, openssl: str = "openssl") -> set[str]:
    """A certificate's subjectAltName entries, normalised as :func:`certificate_names` writes them."""
    text = certificate_text(cert, openssl=openssl)
    found = re.search(r"X509v3 Subject Alternative Name:[^\n]*\n\s*([^\n]*)", text)
    if not found:
        return set()
    entries = set()
    for item in found.group(1).split(","):
        item = item.strip()
        if item.startswith(("DNS:", "IP Address:", "IP:")):
            entries.add(_normal(item.replace("IP Address:", "IP:", 1)))
    return entries


def expires_within(cert: Path, seconds: int, *, openssl: str = "openssl") -> bool:
    """Whether the certificate expires within ``seconds`` from now (or cannot be read)."""
    done = _openssl("x509", "-in", str(cert), "-noout", "-checkend", str(int(seconds)), openssl=openssl)
    return done.returncode != 0


def ensure_certificate(folder: Path, addresses: Iterable[str] | None = None, hostname: str | None = None,
                       *, openssl: str = "openssl") -> tuple[Path, Path, bool]:
    """``folder/cvlab.crt`` and ``folder/cvlab.key`` covering ``addresses`` (default: this
    machine's LAN addresses) and ``hostname`` (default: this machine's), made if missing, if
    they no longer cover every name, or if they expire within 30 days. Returns (cert, key, made)."""
    folder = Path(folder)
    if addresses is None:
        addresses = lan_addresses()
    if hostname is None:
        hostname = socket.gethostname()
    names = certificate_names(addresses, hostname)
    cert, key = folder / CERT_NAME, folder / KEY_NAME
    if cert.is_file() and key.is_file():
        try:
            if set(names) <= names_in(cert, openssl=openssl) and not expires_within(
                    cert, RENEW_WITHIN_S, openssl=openssl):
                return cert, key, False
        except CertificateError:
            pass  # unreadable: make a new one
    make_certificate(cert, key, names, openssl=openssl)
    return cert, key, True


# --------------------------------------------------------------------------- command line


USAGE = """usage: python -m core.lan cert [FOLDER]   make (or reuse) FOLDER/cvlab.crt + cvlab.key
                                           (default .certs); print their paths, one a line
       python -m core.lan check CERT KEY   check your own certificate; print CERT and KEY
       python -m core.lan addresses        this machine's LAN addresses"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else ""
    try:
        if command == "cert" and len(args) <= 1:
            cert, key, made = ensure_certificate(Path(args[0] if args else ".certs"))
            names = ", ".join(n.split(":", 1)[1] for n in sorted(names_in(cert)))
            print(f"==> {'made' if made else 'using'} the self-signed certificate {cert} for: {names}", file=sys.stderr)
            print(cert)
            print(key)
            return 0
        if command == "check" and len(args) == 2:
            cert, key = (Path(a) for a in args)
            for path in (cert, key):
                if not path.is_file() or not os.access(path, os.R_OK):
                    raise CertificateError(f"{path}: no such readable file")
            names = ", ".join(n.split(":", 1)[1] for n in sorted(names_in(cert))) or "(no subjectAltName)"
            if expires_within(cert, 0):
                raise CertificateError(f"{cert} has expired")
            print(f"==> using the certificate {cert} for: {names}", file=sys.stderr)
            print(cert)
            print(key)
            return 0
        if command == "addresses" and not args:
            print("\n".join(lan_addresses()))
            return 0
    except (CertificateError, ValueError) as err:
        print(f"!! {err}", file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
