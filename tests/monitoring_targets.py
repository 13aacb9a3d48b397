"""Real loopback targets for the poller's tests and bench: HTTP(S), TLS with a certificate
made on the spot, DNS (a tiny authoritative UDP server), and Debian's snmpd."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        port = self.server.server_address[1]
        path = self.path
        if path == "/ok":
            self._send(200, b"hello from watchkeeper target: all systems nominal")
        elif path == "/error":
            self._send(503, b"maintenance in progress")
        elif path == "/redirect":
            self._send(302, headers={"Location": "/ok"})
        elif path == "/offsite":
            self._send(302, headers={"Location": f"http://localhost:{port}/ok"})
        elif path == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif path == "/hold":
            # Counts requests in progress (server.in_flight / server.in_flight_max).
            with self.server.lock:
                self.server.in_flight += 1
                self.server.in_flight_max = max(self.server.in_flight_max,
                                                self.server.in_flight)
            time.sleep(0.2)
            with self.server.lock:
                self.server.in_flight -= 1
            self._send(200, b"held")
        elif path == "/slow":
            time.sleep(1.5)
            self._send(200, b"slow but fine")
        else:
            self._send(404, b"not found")


class HttpTarget:
    """A threaded HTTP (or, with `tls`, HTTPS) server on 127.0.0.1."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.lock = threading.Lock()
        self.server.in_flight = self.server.in_flight_max = 0
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class CertificateAuthority:
    """A throwaway CA that issues leaf certificates for loopback names."""

    def __init__(self, directory: str):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Watchkeeper Test CA")])
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = os.path.join(directory, "ca.pem")
        with open(self.ca_file, "wb") as fh:
            fh.write(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, label: str, *, days: float, names=("localhost",),
              ips=("127.0.0.1",), issuer=None) -> ssl.SSLContext:
        """A server SSLContext with a fresh leaf valid for `days` more days."""
        issuer = issuer or self
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(issuer.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(issuer.key, hashes.SHA256())
        )
        cert_path = os.path.join(self.directory, f"{label}.pem")
        key_path = os.path.join(self.directory, f"{label}.key")
        with open(cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context


class DnsTarget:
    """An authoritative UDP DNS server on 127.0.0.1 answering from a dict of records:
    {("name.", "A"): ["192.0.2.10"], ...}; other names get NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]]):
        self.records = {(n.lower(), t): v for (n, t), v in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().lower()
            rtype = dns.rdatatype.to_text(question.rdtype)
            if (name, rtype) in self.records:
                response.answer.append(dns.rrset.from_text_list(
                    question.name, 60, "IN", rtype, self.records[(name, rtype)]))
            elif not any(n == name for n, _t in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), addr)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=2)
        self.sock.close()


SNMPD = "/usr/sbin/snmpd"
SNMP_COMMUNITY = "wk-community"
SNMP_USER, SNMP_AUTH_KEY, SNMP_PRIV_KEY = "wkuser", "wk-auth-pass-1", "wk-priv-pass-1"


class SnmpTarget:
    """Debian's snmpd in the foreground on a free loopback UDP port, with a v2c community
    and a v3 user (SHA + AES)."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="wk-snmpd-")
        self.port = free_port(socket.SOCK_DGRAM)
        self.conf = os.path.join(self.directory, "snmpd.conf")
        with open(self.conf, "w") as fh:
            fh.write(f"rocommunity {SNMP_COMMUNITY} 127.0.0.1\n"
                     f'createUser {SNMP_USER} SHA "{SNMP_AUTH_KEY}" AES "{SNMP_PRIV_KEY}"\n'
                     f"rouser {SNMP_USER} priv\n"
                     "sysLocation watchkeeper-test-rack\n")
        self.proc = None

    def __enter__(self):
        env = {**os.environ, "SNMP_PERSISTENT_DIR": os.path.join(self.directory, "persist"),
               "MIBS": "", "MIBDIRS": ""}
        self.proc = subprocess.Popen(
            [SNMPD, "-f", "-Lo", "-C", "-c", self.conf, "-p",
             os.path.join(self.directory, "pid"), f"udp:127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self, limit=10.0):
        # A v2c GET of sysUpTime.0, BER-encoded by hand: ready once the agent answers.
        def tlv(tag: int, body: bytes) -> bytes:
            assert len(body) < 128
            return bytes([tag, len(body)]) + body

        varbind = tlv(0x30, tlv(0x06, bytes.fromhex("2b06010201010300")) + tlv(0x05, b""))
        pdu = tlv(0xA0, tlv(0x02, b"\x01") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00")
                  + tlv(0x30, varbind))
        message = tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, SNMP_COMMUNITY.encode()) + pdu)
        deadline = time.monotonic() + limit
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("snmpd exited")
                s.sendto(message, ("127.0.0.1", self.port))
                try:
                    s.recvfrom(4096)
                    return
                except TimeoutError:
                    continue
        raise RuntimeError("snmpd did not answer")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
