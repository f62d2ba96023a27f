"""The legacy uploader of the seed articles, as people run it today: whitelist on the raw name,
secure_filename, files sorted into images/videos/files, optional X-API-KEY. upload-guard is put in
front of it; nothing here changes for that.

Environment: HOST (127.0.0.1), PORT (5000; 0 picks a free port and prints "LISTENING <port>"),
UPLOAD_DIR (./uploads), MAX_CONTENT_LENGTH (bytes, 50 MiB), API_KEY (optional).
"""
import os
import sys

from flask import Flask, jsonify, request, send_from_directory
from werkzeug.serving import make_server
from werkzeug.utils import secure_filename

ALLOWED_EXTENSIONS = {"png", "jpg", "jpeg", "gif", "mp4", "mov", "pdf", "docx"}
UPLOAD_DIR = os.path.abspath(os.environ.get("UPLOAD_DIR", "uploads"))
API_KEY = os.environ.get("API_KEY")

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = int(os.environ.get("MAX_CONTENT_LENGTH", 50 * 1024 * 1024))


def allowed_file(filename):
    return "." in filename and filename.rsplit(".", 1)[1].lower() in ALLOWED_EXTENSIONS


def get_file_type(filename):
    ext = filename.rsplit(".", 1)[1].lower()
    if ext in {"mp4", "mov"}:
        return "videos"
    if ext in {"png", "jpg", "jpeg", "gif"}:
        return "images"
    return "files"


@app.before_request
def require_api_key():
    if API_KEY and request.endpoint in ("upload_file", "upload_multiple_files"):
        if request.headers.get("X-API-KEY") != API_KEY:
            return jsonify({"error": "Unauthorized"}), 401


def save(file):
    if not file or file.filename == "" or not allowed_file(file.filename):
        return None
    filename = secure_filename(file.filename)
    folder = os.path.join(UPLOAD_DIR, get_file_type(filename))
    os.makedirs(folder, exist_ok=True)
    file.save(os.path.join(folder, filename))
    return {"filename": filename, "type": get_file_type(filename)}


@app.route("/", methods=["GET"])
def index():
    return '<form method="post" action="/upload" enctype="multipart/form-data"><input type="file" name="file"><button>Upload</button></form>'


@app.route("/upload", methods=["POST"])
def upload_file():
    stored = save(request.files.get("file"))
    if stored is None:
        return jsonify({"error": "Invalid file type"}), 400
    return jsonify({"message": "File uploaded", **stored})


@app.route("/upload-multiple", methods=["POST"])
def upload_multiple_files():
    stored = [save(f) for f in request.files.getlist("files")]
    if not stored or None in stored:
        return jsonify({"error": "Invalid file type"}), 400
    return jsonify({"message": "Files uploaded", "files": stored})


@app.route("/files/<path:name>", methods=["GET"])
def get_file(name):
    return send_from_directory(UPLOAD_DIR, name)


if __name__ == "__main__":
    server = make_server(os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "5000")), app, threaded=True)
    print(f"LISTENING {server.port}", flush=True)
    server.serve_forever()
