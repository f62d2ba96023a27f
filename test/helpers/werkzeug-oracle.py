# The real Werkzeug multipart parser as a test oracle (test/helpers/werkzeug-oracle.ts runs it).
#
# Long-lived: reads one JSON request per line on stdin, answers one JSON line on stdout, so a
# differential test can ask thousands of questions of one interpreter.
#
#   {"op": "parse", "contentType": "...", "body": "<base64>"}
#     -> {"fields": [[name, value], ...], "files": [[name, filename, secure_filename(filename),
#         sha256hex, size], ...], "error": null | "ExceptionType: message"}
#     Fields and files each in body order. Parsed with parse_form_data(silent=False), so a body
#     Werkzeug silently drops (what a Flask view would see as an empty form) reports its error;
#     an exception other than ValueError would be a 500 in the app and is reported the same way.
#   {"op": "secure", "names": [...]} -> {"names": [secure_filename(name), ...]}
#   {"op": "version"} -> {"werkzeug": "2.2.2", "python": "3.11.2"}
import base64
import hashlib
import io
import json
import sys

try:
    from importlib.metadata import version
    from werkzeug.formparser import parse_form_data
    from werkzeug.utils import secure_filename
except ImportError as e:  # the TypeScript side turns exit 3 into an install hint
    print(e, file=sys.stderr)
    sys.exit(3)


def parse(content_type, body):
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    try:
        # cls=list keeps fields and files in body order (a MultiDict groups them by key)
        _, form, files = parse_form_data(environ, silent=False, cls=list)
    except Exception as e:  # noqa: BLE001 - every failure is an answer
        return {"fields": [], "files": [], "error": f"{type(e).__name__}: {e}"}
    out_files = []
    for name, storage in files:
        data = storage.read()
        filename = storage.filename
        out_files.append([
            name,
            filename,
            secure_filename(filename) if filename is not None else None,
            hashlib.sha256(data).hexdigest(),
            len(data),
        ])
    return {"fields": [[name, value] for name, value in form], "files": out_files, "error": None}


def answer(request):
    op = request.get("op")
    if op == "parse":
        return parse(request["contentType"], base64.b64decode(request["body"]))
    if op == "secure":
        return {"names": [secure_filename(n) for n in request["names"]]}
    if op == "version":
        return {"werkzeug": version("werkzeug"), "python": sys.version.split()[0]}
    return {"error": f"unknown op {op!r}"}


for line in sys.stdin:
    if not line.strip():
        continue
    try:
        reply = answer(json.loads(line))
    except Exception as e:  # noqa: BLE001 - keep serving
        reply = {"error": f"oracle: {type(e).__name__}: {e}"}
    # ensure_ascii: lone surrogates from surrogateescape-free decoding stay representable
    sys.stdout.write(json.dumps(reply, ensure_ascii=True) + "\n")
    sys.stdout.flush()
