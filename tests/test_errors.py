"""Bad input gives one clear error, exit 1, and leaves no output directory."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import EXAMPLES
from digestlib import repin_digests


def build(annpack, tmp_path, content, *extra, name="in.csv", text_col="text", id_col="id"):
    src = tmp_path / name
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        src.write_text(content)
    out = tmp_path / "out"
    args = ["build", "--input", src, "--text-col", text_col, "--output", out, *extra]
    if id_col:
        args += ["--id-col", id_col]
    r = annpack(*args)
    return r, out


def assert_failed(r, out, *needles, rc=1):
    assert r.rc == rc, repr(r)
    for n in needles:
        assert n in r.err, repr(r)
    assert len(r.err.strip().splitlines()) == 1, repr(r)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]


def test_missing_input(annpack, tmp_path):
    r = annpack("build", "--input", tmp_path / "nope.csv", "--text-col", "text",
                "--output", tmp_path / "out")
    assert_failed(r, tmp_path / "out", "nope.csv", "No such file")


def test_missing_text_column(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "id,body\n1,x\n")
    assert_failed(r, out, 'text column "text" not found', '"id", "body"')


def test_missing_id_column(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "key,text\n1,x\n")
    assert_failed(r, out, 'id column "id" not found', '"key", "text"')


def test_unterminated_quote(annpack, tmp_path):
    r, out = build(annpack, tmp_path, 'id,text\n1,ok\n2,"open\n3,x\n')
    assert_failed(r, out, "unterminated", ":3")


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "9007199254740992", "", " 7"])
def test_bad_id(annpack, tmp_path, bad):
    r, out = build(annpack, tmp_path, f'id,text\n1,ok\n"{bad}",x\n')
    assert_failed(r, out, "in.csv:3", "is not an integer")


def test_duplicate_id(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "id,text\n5,a\n6,b\n5,c\n")
    assert_failed(r, out, "duplicate id 5", "in.csv:4", "line 2")


def test_empty_input(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "")
    assert_failed(r, out, "empty input")
    r, out = build(annpack, tmp_path, "id,text\n")
    assert_failed(r, out, "no data rows")


def test_wrong_field_count(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "id,text\n1,a\n2,b,c\n")
    assert_failed(r, out, "in.csv:3", "3 fields", "header has 2")


def test_invalid_utf8(annpack, tmp_path):
    r, out = build(annpack, tmp_path, b"id,text\n1,caf\xe9\n")
    assert_failed(r, out, "in.csv:2", "UTF-8")


def test_too_many_columns(annpack, tmp_path):
    # Each row is a JSON object with a key per column plus "id": the readers' cap on keys
    # per object (65536) would refuse every row, so the build refuses the header.
    header = ",".join(["text"] + [f"c{i}" for i in range(65535)])
    r, out = build(annpack, tmp_path, header + "\n" + "a" + "," * 65535 + "\n", id_col=None)
    assert_failed(r, out, "65536 columns; at most 65535")


def test_reserved_id_column(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "id,text\n1,a\n", id_col=None)
    assert_failed(r, out, 'column "id" is reserved')


def test_lists_zero(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "id,text\n1,a\n", "--lists", "0")
    assert_failed(r, out, "--lists must be at least 1")


def test_dim_above_cap(annpack, tmp_path):
    r, out = build(annpack, tmp_path, "id,text\n1,a\n", "--dim", "4097")
    assert_failed(r, out, "ANNPACK_MAX_DIM", "4096")


def test_device_other_than_cpu(annpack, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,a\n")
    r = annpack("build", "--input", src, "--text-col", "text", "--id-col", "id",
                "--output", tmp_path / "out", env={"ANNPACK_DEVICE": "cuda"})
    assert_failed(r, tmp_path / "out", "ANNPACK_DEVICE=cuda", "expected cpu", rc=2)


def test_refuses_to_overwrite_foreign_dir(annpack, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,a\n")
    args = ["build", "--input", src, "--text-col", "text", "--id-col", "id", "--output", out]
    r = annpack(*args)
    assert r.rc == 1 and "not an annpack output" in r.err and "--force" in r.err
    assert (out / "precious.txt").read_text() == "keep me"
    annpack.ok(*args, "--force")
    assert not (out / "precious.txt").exists() and (out / "pack.annpack").exists()


def test_usage_errors_exit_2(annpack, tmp_path):
    assert annpack("build", "--input", "x.csv").rc == 2
    assert annpack("build", "--bogus").rc == 2
    assert annpack("build", "--input", "x", "--text-col", "t", "--output", "o", "--seed", "-1").rc == 2
    assert annpack("search", tmp_path).rc == 2


# --- readers -------------------------------------------------------------------------


@pytest.fixture
def pack_copy(tiny_pack, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(tiny_pack, d)
    return d


def rewrite_manifest(d, fn):
    m = json.loads((d / "pack.manifest.json").read_text())
    fn(m)
    (d / "pack.manifest.json").write_text(json.dumps(m))


def refresh_hash(d, name):
    import hashlib
    def fn(m):
        m["files"][name]["sha256"] = hashlib.sha256((d / name).read_bytes()).hexdigest()
        m["files"][name]["size"] = (d / name).stat().st_size
        repin_digests(d, m)
    rewrite_manifest(d, fn)


def patch(d, name, offset, data):
    p = d / name
    b = bytearray(p.read_bytes())
    b[offset:offset + len(data)] = data
    p.write_bytes(bytes(b))


def test_hash_mismatch_named(annpack, pack_copy):
    patch(pack_copy, "pack.annpack", 200, b"\x55")
    r = annpack("verify", pack_copy)
    # pack.digests names the range: byte 200 lies in the head (header and centroids)
    assert r.rc == 1 and "pack.annpack: header and centroids (range 0, " in r.err and \
        "does not match pack.digests" in r.err
    rep = json.loads(r.out)
    assert rep["ok"] is False and rep["error"]["file"] == "pack.annpack"


@pytest.mark.parametrize("name,offset,data,needle", [
    ("pack.annpack", 0, b"XXXX", "wrong magic"),
    ("pack.annpack", 20, (5000).to_bytes(4, "little"), "ANNPACK_MAX_DIM"),
    ("pack.annpack", 28, (2_000_000).to_bytes(4, "little"), "ANNPACK_MAX_LISTS"),
    ("pack.annpack", 36, (1 << 40).to_bytes(8, "little"), "offset table"),
])
def test_corrupt_header_even_with_matching_hash(annpack, pack_copy, name, offset, data, needle):
    """A re-hashed (so hash-valid) but malformed file is still refused, naming the problem."""
    patch(pack_copy, name, offset, data)
    refresh_hash(pack_copy, name)
    for cmd in (["verify", pack_copy], ["search", pack_copy, "x"], ["inspect", pack_copy]):
        r = annpack(*cmd)
        assert r.rc == 1 and needle in r.err, repr(r)


def test_list_offsets_outside_file(annpack, pack_copy):
    import struct
    data = (pack_copy / "pack.annpack").read_bytes()
    table = struct.unpack_from("<Q", data, 36)[0]
    patch(pack_copy, "pack.annpack", table, struct.pack("<Q", len(data) + 10))
    refresh_hash(pack_copy, "pack.annpack")
    r = annpack("search", pack_copy, "x")
    assert r.rc == 1 and "outside the file" in r.err


def test_count_does_not_fit_length(annpack, pack_copy):
    import struct
    data = (pack_copy / "pack.annpack").read_bytes()
    table = struct.unpack_from("<Q", data, 36)[0]
    off = struct.unpack_from("<Q", data, table)[0]
    patch(pack_copy, "pack.annpack", off, struct.pack("<I", 999))
    refresh_hash(pack_copy, "pack.annpack")
    r = annpack("search", pack_copy, "x")
    assert r.rc == 1 and "does not fit" in r.err


def test_truncated_annpack(annpack, pack_copy):
    p = pack_copy / "pack.annpack"
    for size in (0, 50, 72, 1000):
        p.write_bytes(p.read_bytes()[:size] if size else b"")
        refresh_hash(pack_copy, "pack.annpack")
        r = annpack("search", pack_copy, "x")
        assert r.rc == 1 and ("truncated" in r.err or "outside" in r.err), repr(r)


@pytest.mark.parametrize("edit,needle", [
    (lambda m: m.update(schema_version=2.5), "exact integer"),
    (lambda m: m.update(dim="256"), '"dim" is not a number'),
    (lambda m: m["shards"][0].update(annpack="../x.annpack"), "path escape"),
    (lambda m: m["shards"][0].update(annpack="/etc/passwd"), "absolute path"),
    (lambda m: m.pop("files"), 'field "files" missing'),
])
def test_hostile_manifest(annpack, pack_copy, edit, needle):
    rewrite_manifest(pack_copy, edit)
    r = annpack("verify", pack_copy)
    assert r.rc == 1 and needle in r.err, repr(r)
    assert annpack("search", pack_copy, "x").rc == 1


def test_duplicate_keys_refused(annpack, pack_copy):
    text = (pack_copy / "pack.manifest.json").read_text()
    text = text.replace('"dim":', '"dim":\t256,\n\t"dim":', 1)
    (pack_copy / "pack.manifest.json").write_text(text)
    r = annpack("verify", pack_copy)
    assert r.rc == 1 and 'duplicate key "dim"' in r.err


def test_case_sensitive_keys(annpack, pack_copy):
    text = (pack_copy / "pack.manifest.json").read_text().replace('"dim":', '"DIM":', 1)
    (pack_copy / "pack.manifest.json").write_text(text)
    r = annpack("search", pack_copy, "x")
    assert r.rc == 1 and 'field "dim" missing' in r.err


def test_unlisted_meaningful_file(annpack, pack_copy):
    (pack_copy / "pack.meta.jsonl").write_text('{"id": 0}\n')
    r = annpack("verify", pack_copy)
    assert r.rc == 1 and "pack.meta.jsonl" in r.err and "not listed" in r.err


def test_missing_file(annpack, pack_copy):
    os.unlink(pack_copy / "pack.meta.idx")
    r = annpack("verify", pack_copy)
    assert r.rc == 1 and "pack.meta.idx" in r.err and "missing" in r.err


def test_manifest_size_cap(annpack, pack_copy):
    text = (pack_copy / "pack.manifest.json").read_text()
    (pack_copy / "pack.manifest.json").write_text(text[:-2] + " " * (16 << 20) + "}\n")
    r = annpack("verify", pack_copy)
    assert r.rc == 1 and "exceeds the manifest cap" in r.err
    assert annpack("search", pack_copy, "x").rc == 1


@pytest.fixture(scope="module")
def base_ps(tmp_path_factory):
    from conftest import BUILD, Cli
    d = tmp_path_factory.mktemp("idlist") / "ps"
    Cli(BUILD / "tools" / "annpack").ok("packset", "build-base", "--input",
                                        EXAMPLES / "tiny_docs.csv", "--packset", d,
                                        "--lists", 4, "--seed", 1)
    return d


@pytest.mark.parametrize("content,needles", [
    # The old message echoed every following line of the file.
    (b"7\nseven\n8\n9\n10\n", ['bad.txt:2: "seven" is not an id']),
    (b"7\n\tab\"c\\d\x01\xff \r\n8\n", ['bad.txt:2: "ab\\"c\\\\d\\x01\\xff" is not an id']),
    (b"1\n2\n" + b"x" * 5000 + b"\n3\n", ['bad.txt:3: "' + "x" * 40 + '..." is not an id']),
    (b"12345678901234567\n", ['bad.txt:1: "12345678901234567" is not an id']),
    (b"7\nlast line without newline", ['bad.txt:2: "last line without newline"']),
    (b'{"id": 3}\n{"id": 3, "id": 4}\n5\n', ['bad.txt:2: duplicate key "id" at byte 10']),
    (b'{"id": 3}\n{"id": 03}\n5\n', ["bad.txt:2: number with a leading zero at byte 7"]),
    (b'{"x\\ny": 3}\n', ['bad.txt:1: expected {"id": N}']),
], ids=["word", "escaped", "long", "too-big", "no-newline", "dup-key", "leading-zero", "no-id"])
def test_bad_id_list_line_is_one_line(annpack, base_ps, tmp_path, content, needles):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    r = annpack("packset", "build-delta", "--packset", base_ps, "--delete-ids-file", bad,
                "--out", base_ps / "deltas" / "0001.delta")
    assert r.rc == 1, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 400 + len(str(bad)), r
    for n in needles:
        assert n in lines[0], r
    assert not (base_ps / "deltas" / "0001.delta").exists()


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory):
    """Keys of other algorithms, made by real openssl."""
    d = tmp_path_factory.mktemp("keys")

    def ossl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    ossl("genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:2048", "-out", d / "rsa.pem")
    ossl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", d / "ec.pem")
    ossl("genpkey", "-algorithm", "ed448", "-out", d / "ed448.pem")
    ossl("genpkey", "-algorithm", "x25519", "-out", d / "x25519.pem")
    for k in ["rsa", "ec", "ed448", "x25519"]:
        ossl("pkey", "-in", d / f"{k}.pem", "-pubout", "-out", d / f"{k}.pub")
    ossl("pkey", "-in", d / "rsa.pem", "-traditional", "-out", d / "rsa-trad.pem")
    ossl("pkey", "-in", d / "ec.pem", "-traditional", "-out", d / "ec-trad.pem")
    ossl("rsa", "-in", d / "rsa.pem", "-RSAPublicKey_out", "-out", d / "rsa-pkcs1.pub")
    ossl("genpkey", "-algorithm", "ed25519", "-out", d / "ed25519.pem")
    return d


@pytest.mark.parametrize("key,needle", [
    ("rsa.pem", "not an Ed25519 key: it is an RSA private key (algorithm 1.2.840.113549.1.1.1)"),
    ("ec.pem", "not an Ed25519 key: it is an EC (P-256) private key (algorithm 1.2.840.10045.2.1)"),
    ("ed448.pem", "not an Ed25519 key: it is an Ed448 private key (algorithm 1.3.101.113)"),
    ("x25519.pem", "not an Ed25519 key: it is an X25519 private key (algorithm 1.3.101.110)"),
    ("rsa-trad.pem", 'not an Ed25519 key: it is an RSA private key (PEM "RSA PRIVATE KEY")'),
    ("ec-trad.pem", 'not an Ed25519 key: it is an EC private key (PEM "EC PRIVATE KEY")'),
    ("rsa.pub", 'a public key (PEM "PUBLIC KEY"), not a private key'),
])
def test_sign_with_other_key_types(annpack, tiny_pack, tmp_path, other_keys, key, needle):
    d = tmp_path / "pack"
    shutil.copytree(tiny_pack, d)
    r = annpack("sign", d, "--key", other_keys / key)
    assert r.rc == 1 and f"{key}: {needle}" in r.err, r
    assert len(r.err.strip().splitlines()) == 1
    assert "base64" not in r.err
    assert not (d / "pack.manifest.json.sig").exists()


@pytest.mark.parametrize("key,needle", [
    ("rsa.pub", "PUBLIC KEY block 1 is not an Ed25519 key: it is an RSA public key "
                "(algorithm 1.2.840.113549.1.1.1)"),
    ("ec.pub", "PUBLIC KEY block 1 is not an Ed25519 key: it is an EC (P-256) public key"),
    ("ed448.pub", "PUBLIC KEY block 1 is not an Ed25519 key: it is an Ed448 public key"),
    ("rsa-pkcs1.pub", 'not an Ed25519 key: it is an RSA public key (PEM "RSA PUBLIC KEY")'),
    ("ed25519.pem", 'a private key (PEM "PRIVATE KEY"), not a public key: give the .pub file'),
])
def test_pubkey_of_other_key_types(annpack, tiny_pack, other_keys, key, needle):
    r = annpack("verify", tiny_pack, "--pubkey", other_keys / key)
    assert r.rc == 1 and f"{key}: {needle}" in r.err, r
    assert len(r.err.strip().splitlines()) == 1
    assert "base64" not in r.err


BAD_ENV = [
    ("ANNPACK_LOG_LEVEL", "bogus", "expected ERROR, WARN, INFO or DEBUG"),
    ("ANNPACK_LOG_LEVEL", "3", "expected ERROR, WARN, INFO or DEBUG"),
    ("ANNPACK_LOG_JSON", "yes", "expected 0 or 1"),
    ("ANNPACK_THREADS", "abc", "expected a positive integer"),
    ("ANNPACK_THREADS", "0", "expected a positive integer"),
    ("ANNPACK_THREADS", "-2", "expected a positive integer"),
    ("ANNPACK_THREADS", "4x", "expected a positive integer"),
    ("ANNPACK_FAISS_THREADS", "many", "expected a positive integer"),
    ("ANNPACK_MAX_DIM", "12x", "expected a positive integer"),
    ("ANNPACK_MAX_LIST_BYTES", "0", "expected a positive integer"),
    ("ANNPACK_META_MAX_LINE", "1e6", "expected a positive integer"),
    ("ANNPACK_ALLOW_LARGE_META", "true", "expected 0 or 1"),
    ("ANNPACK_DEVICE", "cuda", "expected cpu"),
]


@pytest.mark.parametrize("var,value,needle", BAD_ENV, ids=[f"{v}={x}" for v, x, _ in BAD_ENV])
def test_bad_environment_refused(annpack, tiny_pack, tmp_path, var, value, needle):
    """Every ANNPACK_* variable libannpack reads is checked at start: one line naming the
    variable and the accepted values, exit 2, from annpack and annpackfs alike."""
    for args in (["inspect", tiny_pack], ["--version"]):
        r = annpack(*args, env={var: value})
        assert r.rc == 2, r
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and f"{var}={value}" in lines[0] and needle in lines[0], r
        assert r.out == ""
    from mountlib import ANNPACKFS, is_mounted
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    e = dict(os.environ, **{var: value})
    r = subprocess.run([ANNPACKFS, tiny_pack, mnt], capture_output=True, text=True, env=e,
                       timeout=60)
    try:
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{var}={value}" in lines[0] and needle in lines[0], r.stderr
    finally:
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])
    assert not is_mounted(mnt)


@pytest.mark.parametrize("env", [
    {"ANNPACK_LOG_LEVEL": "debug"}, {"ANNPACK_LOG_LEVEL": "Warning"},
    {"ANNPACK_LOG_JSON": "0"}, {"ANNPACK_THREADS": "1000"}, {"ANNPACK_THREADS": ""},
    {"ANNPACK_FAISS_THREADS": "3"}, {"ANNPACK_MAX_DIM": "8192"},
    {"ANNPACK_ALLOW_LARGE_META": "0"}, {"ANNPACK_DEVICE": "cpu"}, {"ANNPACK_LOG_LEVEL": ""},
])
def test_good_environment_accepted(annpack, tiny_pack, env):
    r = annpack("inspect", tiny_pack, env=env)
    assert r.rc == 0, r


def _json_lines(text):
    lines = [l for l in text.splitlines() if l.strip()]
    for l in lines:
        o = json.loads(l)  # raises on a plain-text line
        assert {"ts", "level", "program", "component", "msg"} <= set(o), l
    return [json.loads(l) for l in lines]


def test_log_json_every_stderr_line(annpack, tmp_path):
    """With ANNPACK_LOG_JSON=1 every line on stderr is a JSON object: core's log lines, the
    build's summary and notes, errors and usage errors."""
    env = {"ANNPACK_LOG_JSON": "1", "ANNPACK_LOG_LEVEL": "INFO"}
    out = tmp_path / "p"
    r = annpack("build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col", "text",
                "--id-col", "id", "--output", out, "--lists", 400, env=env)
    assert r.rc == 0, r
    objs = _json_lines(r.err)
    build = [o for o in objs if o["component"] == "build" and o["program"] == "annpack"]
    assert any("40 rows, dim 256" in o["msg"] for o in build), objs
    assert any("--lists 400 clamped" in o["msg"] for o in build), objs
    # A failure (cli_fail) and a usage error, each one JSON line.
    r = annpack("verify", tmp_path / "nope", env=env)
    assert r.rc == 1
    (o,) = _json_lines(r.err)
    assert o["level"] == "ERROR" and o["component"] == "verify" and "nope" in o["msg"]
    r = annpack("build", "--bogus", env=env)
    assert r.rc == 2
    (o,) = _json_lines(r.err)
    assert "unknown option --bogus" in o["msg"] and "--help" in o["msg"]
    r = annpack("frobnicate", env=env)
    assert r.rc == 2
    (o,) = _json_lines(r.err)
    assert "unknown command" in o["msg"]
    r = annpack(env=env)
    assert r.rc == 2
    _json_lines(r.err)
    # A bad environment value is reported in JSON too.
    r = annpack("inspect", out, env=dict(env, ANNPACK_THREADS="abc"))
    assert r.rc == 2
    (o,) = _json_lines(r.err)
    assert "ANNPACK_THREADS=abc" in o["msg"]


def test_log_json_no_progress_bar_on_a_tty(annpack, tmp_path):
    """On a terminal the build draws a progress bar, except with ANNPACK_LOG_JSON=1."""
    import pty
    for env, want_bar in (({}, True), ({"ANNPACK_LOG_JSON": "1"}, False)):
        master, slave = pty.openpty()
        e = dict(os.environ, ANNPACK_THREADS="2", **env)
        args = [annpack.exe, "build", "--input", EXAMPLES / "tiny_docs.csv", "--text-col",
                "text", "--id-col", "id", "--output", tmp_path / f"p{len(env)}", "--lists", 4]
        p = subprocess.Popen([str(a) for a in args],
                             stdout=subprocess.DEVNULL, stderr=slave, env=e)
        os.close(slave)
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        assert p.wait(timeout=60) == 0
        os.close(master)
        text = data.decode()
        bar = re.search(r"\r(?!\n)", text) is not None  # a bare CR redraws the bar
        assert bar == want_bar, text
        if not want_bar:
            _json_lines(text.replace("\r\n", "\n"))


# ---- ANNPACK_LOG_JSON=1 for the commands that run other programs ----

JSON_ENV = {"ANNPACK_LOG_JSON": "1", "ANNPACK_LOG_LEVEL": "INFO"}


def test_log_json_packset_usage_and_notes(annpack, tmp_path):
    """`annpack packset` without a subcommand, and the re-sign note after changing a signed
    packset: one JSON line each."""
    r = annpack("packset", env=JSON_ENV)
    assert r.rc == 2 and r.out == "", r
    (o,) = _json_lines(r.err)
    assert o["level"] == "ERROR" and "packset --help" in o["msg"], o
    d = tmp_path / "ps"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", d,
               "--lists", 2)
    annpack.ok("keygen", "--out", tmp_path / "k")
    annpack.ok("sign", d, "--key", tmp_path / "k.pem")
    r = annpack("packset", "revert", "--packset", d, "--to", 0, "--pubkey", tmp_path / "k.pub",
                env=JSON_ENV)
    assert r.rc == 0, r
    notes = [o for o in _json_lines(r.err) if "re-sign before publishing" in o["msg"]]
    assert notes and notes[0]["component"] == "packset revert", r.err


def test_log_json_mount_and_umount(annpack, tiny_pack, tmp_path):
    """annpack mount runs annpackfs and annpack umount runs fusermount3: what those print
    on stderr reaches it as JSON lines too."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = annpack("mount", tmp_path / "nope", mnt, env=JSON_ENV, timeout=60)
    assert r.rc != 0, r
    objs = _json_lines(r.err)
    assert objs and any("nope" in o["msg"] for o in objs), objs
    r = annpack("umount", mnt, env=JSON_ENV, timeout=60)
    assert r.rc == 1, r
    objs = _json_lines(r.err)
    assert objs[-1]["component"] == "umount" and "fusermount3 -u" in objs[-1]["msg"], objs
    # A good mount and its unmount print nothing that is not JSON either.
    r = annpack("mount", tiny_pack, mnt, env=JSON_ENV, timeout=120)
    try:
        assert r.rc == 0, r
        _json_lines(r.err)
        assert (mnt / "health").exists()
    finally:
        u = annpack("umount", mnt, env=JSON_ENV, timeout=60)
    assert u.rc == 0, u
    _json_lines(u.err)


def test_log_json_smoke(annpack, tiny_pack, tmp_path):
    """smoke's FAIL line and what it relays from annpackfs and nginx are JSON lines."""
    from servelib import assert_clean, env_with_tmp
    bad = tmp_path / "bad"
    shutil.copytree(tiny_pack, bad)
    data = bytearray((bad / "pack.annpack").read_bytes())
    data[len(data) // 2] ^= 1
    (bad / "pack.annpack").write_bytes(bytes(data))
    r = annpack("smoke", bad, env=env_with_tmp(tmp_path / "t1", JSON_ENV), timeout=300)
    assert r.rc == 1, r
    objs = _json_lines(r.err)
    assert objs[-1]["component"] == "smoke" and objs[-1]["level"] == "ERROR", objs
    assert objs[-1]["msg"].startswith("FAIL serve: annpackfs: refusing to mount"), objs
    assert_clean(tmp_path / "t1")
    # A failing check after both programs started: their logs are relayed, as JSON.
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>not the page</title>\n")
    r = annpack("smoke", tiny_pack, env=env_with_tmp(tmp_path / "t2",
                                                     dict(JSON_ENV, ANNPACK_WEB_DIR=str(web))),
                timeout=300)
    assert r.rc == 1, r
    objs = _json_lines(r.err)
    assert objs[-1]["msg"].startswith("FAIL page: GET /"), objs
    assert_clean(tmp_path / "t2")


def test_log_json_serve(tiny_pack, tmp_path):
    """serve's own lines and the children's (a plain-text nginx warning included) are JSON
    lines, from start to stop."""
    import shutil as sh
    import signal
    from servelib import Serve, assert_clean
    nginx = sh.which("nginx") or "/usr/sbin/nginx"
    chatty = tmp_path / "chatty-nginx"
    chatty.write_text(f"#!/bin/sh\necho 'nginx: [warn] a plain line from nginx' >&2\n"
                      f"exec {nginx} \"$@\"\n")
    chatty.chmod(0o755)
    s = Serve(tiny_pack, tmp_path / "t", env=dict(JSON_ENV, ANNPACK_NGINX=str(chatty)))
    try:
        parts = s.parts()
    finally:
        assert s.stop(signal.SIGTERM) == 0, s.stderr()
    objs = _json_lines(s.stderr())
    msgs = [(o["component"], o["level"], o["msg"]) for o in objs]
    assert any(c == "serve" and "serving" in m for c, _, m in msgs), msgs
    assert any(c == "nginx" and lv == "WARN" and "a plain line from nginx" in m
               for c, lv, m in msgs), msgs
    assert any(c == "serve" and "stopped (signal 15)" in m for c, _, m in msgs), msgs
    assert_clean(tmp_path / "t", parts)
