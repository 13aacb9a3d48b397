"""What a received message contains, walked part by part (docs/helpdesk.md, "Mail intake").

`extract(msg)` walks the whole MIME tree and guarantees that every non-empty leaf part ends
up either in the ticket text or as an attachment:
- the text is the message's body part (plain preferred, HTML converted to text), followed
  by every further inline text part (an HTML part converted);
- of a multipart/alternative, the chosen alternative is the text; another alternative whose
  words all appear in the text already (the usual HTML copy of a plain message) adds
  nothing, and one that says more is added to the text;
- a forwarded message (message/rfc822, message/global) becomes an `.eml` attachment and a
  readable summary (its From, To, Date, Subject and text) for the timeline;
- every other part (non-text, or text sent as a file) is an attachment;
- the parser's defect list is kept, and a damaged message (a multipart whose boundary never
  comes, a part that cannot be decoded) falls back to the best readable text of its raw
  bytes, never to nothing.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message

import html2text

from .. import attachments

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Serialising a forwarded message: no refolding, lines as they were.
_EML_POLICY = policy.default.clone(max_line_length=0, linesep="\r\n")


@dataclass
class Forward:
    filename: str
    data: bytes
    summary: str


@dataclass
class Extracted:
    text: str = ""
    files: list[tuple[str, str, bytes]] = field(default_factory=list)  # name, type, bytes
    forwards: list[Forward] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    fallback: bool = False  # the text came from the raw bytes, not from a decoded part


def html_to_text(html: str, *, links: bool = True) -> str:
    """Readable text of an HTML part: entities decoded, paragraphs, line breaks, lists,
    headings, quotes and tables kept as lines; script and style dropped (html2text)."""
    conv = html2text.HTML2Text()
    conv.body_width = 0
    conv.unicode_snob = True
    conv.ignore_emphasis = True
    conv.images_to_alt = True
    conv.ignore_links = not links
    conv.ignore_images = not links
    try:
        text = conv.handle(html)
    except Exception:  # a converter error must not lose the text: fall back to tag removal
        from django.utils.html import strip_tags

        text = strip_tags(re.sub(r"(?is)<(script|style).*?</\1>", "", html))
    return clean_text(text)


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def words(text: str) -> set[str]:
    return {w.lower() for w in WORD_RE.findall(text)}


def part_bytes(part: Message) -> bytes:
    """The decoded content of a leaf part; the undecoded payload if decoding fails."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            data = payload.encode("utf-8", "surrogateescape")
        else:
            data = b""
    return data


def part_text(part: Message) -> str:
    """The text of a text part, decoded with its charset (or UTF-8, or Latin-1)."""
    content = None
    try:
        content = part.get_content()
    except Exception:
        content = None
    if not isinstance(content, str):
        data = part_bytes(part)
        charset = part.get_content_charset() or "utf-8"
        try:
            content = data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            try:
                content = data.decode("utf-8")
            except UnicodeDecodeError:
                content = data.decode("latin-1")
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return clean_text(content)


def _is_text_body(part: Message) -> bool:
    if part.get_content_maintype() == "multipart":  # a damaged multipart: its payload is text
        return True
    if part.get_content_type() not in ("text/plain", "text/html"):
        return False
    if part.get_content_disposition() == "attachment":
        return False
    return not part.get_filename()


def _filename(part: Message, counter: list[int]) -> str:
    name = None
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        return attachments.safe_filename(name)
    counter[0] += 1
    ext = mimetypes.guess_extension(part.get_content_type()) or ".bin"
    return f"part-{counter[0]}{ext}"


def _defects(msg: Message) -> list[str]:
    found = []
    for part in msg.walk():
        for defect in getattr(part, "defects", []) or []:
            label = type(defect).__name__
            text = str(defect).strip()
            found.append(f"{label}: {text}" if text and text != label else label)
    return found


def summary(inner: Message) -> str:
    """A readable summary of a forwarded message: its headers and its text."""
    lines = []
    for name in ("From", "To", "Cc", "Date", "Subject"):
        try:
            value = inner.get(name)
        except Exception:
            value = None
        if value:
            lines.append(f"{name}: {' '.join(str(value).split())}")
    body = extract(inner, top=False).text
    return "\n".join(lines) + ("\n\n" + body if body else "")


def eml_bytes(inner: Message) -> bytes:
    try:
        return inner.as_bytes(policy=_EML_POLICY)
    except Exception:
        return bytes(inner)


def extract(msg: Message, *, top: bool = True, raw: bytes | None = None) -> Extracted:
    out = Extracted()
    texts: list[str] = []
    counter = [0]
    try:
        body = msg.get_body(preferencelist=("plain", "html")) if \
            isinstance(msg, EmailMessage) else None
    except Exception:
        body = None

    def leaf(part: Message) -> None:
        data = part_bytes(part)
        if not data.strip():
            return
        if _is_text_body(part):
            text = part_text(part)
            if text:
                texts.append(text)
            return
        out.files.append((_filename(part, counter), part.get_content_type(), data))

    def forward(part: Message) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if inner is None or not isinstance(inner, Message):
            leaf(part)
            return
        subject = " ".join(str(inner.get("Subject") or "").split())
        name = attachments.safe_filename((subject or "forwarded message")[:150] + ".eml")
        data = eml_bytes(inner)
        out.files.append((name, "message/rfc822", data))
        out.forwards.append(Forward(filename=name, data=data, summary=summary(inner)))

    def visit(part: Message) -> None:
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            forward(part)
        elif part.is_multipart():
            kids = list(part.iter_parts()) if hasattr(part, "iter_parts") else \
                list(part.get_payload())
            if part.get_content_subtype() == "alternative" and kids:
                chosen = _chosen(kids, body)
                visit(chosen)
                for other in kids:
                    if other is not chosen:
                        alternative(other)
            else:
                for kid in kids:
                    visit(kid)
        else:
            leaf(part)

    def alternative(part: Message) -> None:
        """Another version of what the chosen alternative said: added only if it says
        more (its words are not all in the text so far)."""
        if part.get_content_type() in ("message/rfc822", "message/global"):
            visit(part)
            return
        if part.is_multipart():
            for kid in part.iter_parts() if hasattr(part, "iter_parts") else \
                    part.get_payload():
                alternative(kid)
            return
        if not _is_text_body(part):
            leaf(part)
            return
        data = part_bytes(part)
        if not data.strip():
            return
        plain = part_text(part) if part.get_content_subtype() == "plain" else \
            html_to_text(part_text_raw(part), links=False)
        if words(plain) <= words("\n".join(texts)):
            return
        text = part_text(part)
        if text:
            texts.append(text)

    visit(msg)
    out.text = "\n\n".join(t for t in texts if t)
    out.defects = _defects(msg) if top else []
    if top and not out.text and not out.files and raw is not None:
        out.text, out.fallback = fallback_text(raw), True
    return out


def part_text_raw(part: Message) -> str:
    data = part_bytes(part)
    try:
        return data.decode(part.get_content_charset() or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return data.decode("latin-1")


def _chosen(kids: list[Message], body: Message | None) -> Message:
    for kid in kids:
        if body is not None and any(p is body for p in kid.walk()):
            return kid
    for wanted in ("text/plain", "text/html"):
        for kid in kids:
            if kid.get_content_type() == wanted:
                return kid
    return kids[-1]


def fallback_text(raw: bytes) -> str:
    """The best readable text of a message whose parts gave nothing: its body after the
    headers, MIME boundary and header lines removed, HTML converted."""
    text = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[2]
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        decoded = text.decode("latin-1")
    lines = [line for line in decoded.split("\n")
             if not re.match(r"^--\S+\s*$", line)
             and not re.match(r"^Content-[\w-]+:", line, re.I)
             and not re.match(r"^MIME-Version:", line, re.I)]
    decoded = "\n".join(lines)
    if re.search(r"(?i)<(html|body|p|div|br)\b", decoded):
        return html_to_text(decoded)
    return clean_text(decoded)
