"""Read an upload's multipart body as it streams, refusing too many or too big files early.

Why not FastAPI's `UploadFile`: it parses the whole form before the route runs — after
spooling every file to disk, whatever its size and however many there are. Here the form is
parsed chunk by chunk (python-multipart, as Starlette does) and the request is stopped (413,
in French) as soon as one file passes `FP_UPLOAD_MAX_MB` or the count passes
`FP_UPLOAD_MAX_FILES`: nothing more is read. What is kept (at most files × size per file, in
memory) is handed to the service, which checks each file's type by its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request

from assistant.api.errors import RequestTooLarge
from assistant.api.middleware import size_text

MAX_FIELDS = 20  # form fields besides the files (ignored, but counted)
MAX_FIELD_BYTES = 8 * 1024


@dataclass
class _Part:
    """The part being read: its headers (as they arrive), its field name, file name and bytes."""

    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    name: str = ""
    filename: str | None = None  # None: a plain form field
    data: bytearray = field(default_factory=bytearray)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def read_files(request: Request, *, max_files: int, max_bytes: int) -> list[tuple[str, bytes]]:
    """The (file name, bytes) of every file part, in order; 413 past the limits, 400/415 for a
    body that is not a multipart form."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        raise HTTPException(415, "Envoyez les fichiers en multipart/form-data, dans le champ « files ».")
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "Formulaire multipart sans délimiteur (boundary) : requête mal formée.")

    files: list[tuple[str, bytes]] = []
    fields = 0
    part = _Part()

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.header_value += data[start:end]

    def on_header_end() -> None:
        part.headers[bytes(part.header_name).lower()] = bytes(part.header_value)
        part.header_name, part.header_value = bytearray(), bytearray()

    def on_headers_finished() -> None:
        nonlocal fields
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = _decode(options.get(b"name", b""))
        if b"filename" in options:
            part.filename = _decode(options[b"filename"])
            if part.filename and len(files) >= max_files:
                raise RequestTooLarge(
                    f"Trop de fichiers : au plus {max_files} par dépôt (réglage FP_UPLOAD_MAX_FILES) ; "
                    "déposez les autres dans un second temps."
                )
        else:
            fields += 1
            if fields > MAX_FIELDS:
                raise HTTPException(400, f"Trop de champs dans le formulaire (au plus {MAX_FIELDS}).")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part.data += data[start:end]
        if part.filename is None:
            if len(part.data) > MAX_FIELD_BYTES:
                raise RequestTooLarge(
                    f"Champ « {part.name} » trop long (au plus {size_text(MAX_FIELD_BYTES)}).")
        elif len(part.data) > max_bytes:
            raise RequestTooLarge(
                f"{part.filename or 'fichier'} : fichier trop volumineux (plus de {size_text(max_bytes)}, "
                "la limite par fichier ; réglage FP_UPLOAD_MAX_MB)."
            )

    def on_part_end() -> None:
        if part.filename is None:
            return
        if not part.filename and not part.data:
            return  # a file input left empty
        files.append((part.filename or "sans-nom", bytes(part.data)))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - python-multipart's errors: a malformed body
        raise HTTPException(400, "Formulaire multipart illisible : requête mal formée.") from exc
    if not files:
        raise HTTPException(
            400, "Aucun fichier reçu : envoyez un ou plusieurs fichiers dans le champ « files ».")
    return files
