"""annpack registry and annpack pull against a real CNCF distribution registry
(docker-registry) on 127.0.0.1: htpasswd and Bearer-token authentication, immutable
versions, mutable aliases, download, pull with resume, verification with the host's key,
anti-rollback, a tampered blob in the registry's storage, wrong credentials, and interop
with skopeo and the OCI JSON schemas."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import EXAMPLES
from registrylib import (READER, READER_PASSWORD, USER, PASSWORD, CutProxy, Registry,
                         TokenServer, available, sha256_hex)

pytestmark = pytest.mark.skipif(not available(), reason="docker-registry is not installed "
                                "(tools/setup.sh installs it)")

SCHEMAS = pathlib.Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("registry"))
    try:
        yield r.start()
    finally:
        r.stop()


@pytest.fixture(scope="module")
def signed(annpack, tmp_path_factory):
    """Key pair and two signed versions of one packset (v1: base; v2: + a delta)."""
    d = tmp_path_factory.mktemp("packs")
    annpack.ok("keygen", "--out", d / "ci")
    annpack.ok("keygen", "--out", d / "other")
    v1 = d / "v1"
    annpack.ok("packset", "build-base", "--input", EXAMPLES / "tiny_docs.csv", "--packset", v1,
               "--text-col", "text", "--id-col", "id", "--lists", 4, "--seed", 1)
    annpack.ok("sign", v1, "--key", d / "ci.pem")
    v2 = d / "v2"
    shutil.copytree(v1, v2)
    annpack.ok("packset", "build-delta", "--packset", v2, "--pubkey", d / "ci.pub", "--add",
               EXAMPLES / "delta_add.csv", "--delete-ids", "1,2", "--out",
               v2 / "deltas/0001.delta")
    annpack.ok("sign", v2, "--key", d / "ci.pem")
    return {"dir": d, "v1": v1, "v2": v2, "pub": d / "ci.pub", "pem": d / "ci.pem",
            "other_pub": d / "other.pub"}


def reg(annpack, registry, *args, project="search", check=None, creds="publisher"):
    auth = {"publisher": ["--auth-file", registry.userpass],
            "host": ["--auth-file", registry.reader_pass], None: []}[creds]
    return annpack(*args, "--org", "demo", "--project", project, *auth,
                   env={"ANNPACK_REGISTRY_URL": registry.url}, check=check)


def pull(annpack, registry, ref, into, pub, *extra, url=None, check=None):
    return annpack("pull", f"{url or registry.url}/demo/{ref}", "--into", into, "--pubkey", pub,
                   "--auth-file", registry.userpass, *extra, check=check)


def trees_equal(a, b):
    r = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True)
    return r.returncode == 0, r.stdout


def test_upload_is_immutable_aliases_move(annpack, registry, signed):
    up = reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir",
             signed["v1"], "--pubkey", signed["pub"], check=0).json()
    assert up["status"] == "uploaded" and up["kind"] == "packset" and up["packset_version"] == 1
    again = reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir",
                signed["v1"], check=0).json()
    assert again["digest"] == up["digest"] and again["status"].startswith("already uploaded")
    # Another pack as an existing version: refused, naming the tag; the tag is unchanged.
    r = reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir",
            signed["v2"], check=1)
    assert "version v1 of demo/search already exists with other contents" in r.err, r
    st, hdr, _ = registry.request("/v2/demo/search/manifests/v1", method="HEAD",
                                  accept="application/vnd.oci.image.index.v1+json")
    assert st == 200 and hdr["Docker-Content-Digest"] == up["digest"]
    # A directory that does not verify is not pushed; a wrong key is refused too.
    r = reg(annpack, registry, "registry", "upload", "--version", "v9", "--pack-dir",
            signed["v1"], "--pubkey", signed["other_pub"], check=1)
    assert "signature" in r.err, r
    up2 = reg(annpack, registry, "registry", "upload", "--version", "v2", "--pack-dir",
              signed["v2"], check=0).json()
    assert up2["packset_version"] == 2

    assert reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version",
               "v1", check=0).json()["target"] == "v1"
    got = reg(annpack, registry, "registry", "alias", "get", "--alias", "latest", check=0).json()
    assert got["alias"] == "latest" and got["target"] == "v1"
    reg(annpack, registry, "registry", "alias", "set", "--alias", "stable", "--version", "v1",
        check=0)
    reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version", "v2",
        check=0)
    listed = reg(annpack, registry, "registry", "list", check=0).json()
    assert [(v["version"], v["packset_version"]) for v in listed["versions"]] == \
        [("v1", 1), ("v2", 2)]
    assert {(a["alias"], a["target"]) for a in listed["aliases"]} == \
        {("latest", "v2"), ("stable", "v1")}
    aliases = reg(annpack, registry, "registry", "alias", "list", check=0).json()
    assert "versions" not in aliases and len(aliases["aliases"]) == 2
    # An alias never overwrites a version, a version is never deleted as an alias.
    r = reg(annpack, registry, "registry", "alias", "set", "--alias", "v1", "--version", "v2",
            check=1)
    assert "is a version, not an alias" in r.err
    r = reg(annpack, registry, "registry", "alias", "delete", "--alias", "v1", check=1)
    assert "versions are never deleted" in r.err
    r = reg(annpack, registry, "registry", "alias", "set", "--alias", "x", "--version", "v7",
            check=1)
    assert "no version v7 in demo/search" in r.err
    # Deleting one alias leaves the other alias and both versions.
    assert reg(annpack, registry, "registry", "alias", "delete", "--alias", "stable",
               check=0).json()["deleted"] is True
    r = reg(annpack, registry, "registry", "alias", "get", "--alias", "stable", check=1)
    assert "no alias stable in demo/search" in r.err
    listed = reg(annpack, registry, "registry", "list", check=0).json()
    assert [v["version"] for v in listed["versions"]] == ["v1", "v2"]
    assert [a["alias"] for a in listed["aliases"]] == ["latest"]


def test_download_by_version_and_alias(annpack, registry, signed, tmp_path):
    reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", signed["v1"],
        check=0)
    reg(annpack, registry, "registry", "upload", "--version", "v2", "--pack-dir", signed["v2"],
        check=0)
    reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version", "v2",
        check=0)
    out = tmp_path / "dl"
    d = reg(annpack, registry, "registry", "download", "--version", "v1", "--out", out,
            "--pubkey", signed["pub"], check=0).json()
    assert d["target"] == "v1"
    assert trees_equal(out, signed["v1"])[0]
    r = reg(annpack, registry, "registry", "download", "--version", "latest", "--out", out,
            check=1)
    assert "exists (--force replaces it)" in r.err
    d = reg(annpack, registry, "registry", "download", "--version", "latest", "--out", out,
            "--force", check=0).json()
    assert d["target"] == "v2" and trees_equal(out, signed["v2"])[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl"]  # no temporary left


def test_pull_verifies_refuses_downgrade_and_switches(annpack, registry, signed, tmp_path):
    reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", signed["v1"],
        check=0)
    reg(annpack, registry, "registry", "upload", "--version", "v2", "--pack-dir", signed["v2"],
        check=0)
    reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version", "v1",
        check=0)
    into = tmp_path / "srv" / "ps"
    into.parent.mkdir()
    # The host's key decides: another key's host refuses and creates nothing.
    r = pull(annpack, registry, "search:latest", into, signed["other_pub"], check=1)
    assert "does not verify with" in r.err and not into.exists(), r
    p = pull(annpack, registry, "search:latest", into, signed["pub"], check=0).json()
    assert p["status"] == "switched" and p["version"] == 1 and p["target"] == "v1"
    assert trees_equal(into, signed["v1"])[0]
    assert pull(annpack, registry, "search:v1", into, signed["pub"],
                check=0).json()["status"] == "unchanged"
    base_inode = (into / "base/pack.annpack").stat().st_ino
    reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version", "v2",
        check=0)
    p = pull(annpack, registry, "search:latest", into, signed["pub"], check=0).json()
    assert p["version"] == 2 and p["reused_bytes"] > 0
    assert trees_equal(into, signed["v2"])[0]
    # The unchanged base layer stayed in place, untouched (a mount keeps reading it).
    assert (into / "base/pack.annpack").stat().st_ino == base_inode
    # No served file is a link to the store (a later link would change its ctime).
    assert all(p.stat().st_nlink == 1 for p in into.rglob("*") if p.is_file())
    r = pull(annpack, registry, "search:v1", into, signed["pub"], check=1)
    assert "refusing version 1 of demo/search:v1" in r.err and "anti-rollback" in r.err, r
    assert trees_equal(into, signed["v2"])[0]
    p = pull(annpack, registry, "search:v1", into, signed["pub"], "--allow-downgrade",
             check=0).json()
    assert p["version"] == 1 and trees_equal(into, signed["v1"])[0]
    # annpackfs's state file raises the floor even for a DIR that starts afresh.
    state = tmp_path / "state.json"
    state.write_text('{"version":2}')
    r = pull(annpack, registry, "search:v1", tmp_path / "fresh", signed["pub"], "--state",
             state, check=1)
    assert f"{state} says version 2 was served" in r.err and not (tmp_path / "fresh").exists()
    state.write_text("junk")
    r = pull(annpack, registry, "search:v2", tmp_path / "fresh", signed["pub"], "--state",
             state, check=1)
    assert "not {\"version\":N}" in r.err, r
    # The delta that v1 lacks was retired beside DIR, not deleted under a reader.
    retired = [x for x in into.parent.iterdir() if x.name.startswith(".ps.pull-")]
    assert len(retired) == 1 and (retired[0] / "deltas/0001.delta/pack.annpack").exists()


def test_tampered_blob_in_registry_is_refused(annpack, registry, signed, tmp_path):
    up = reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir",
             signed["v1"], project="tampered", check=0).json()
    digest = "sha256:" + sha256_hex(signed["v1"] / "base/pack.annpack")
    blob = registry.blob_path(digest)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    into = tmp_path / "ps"
    r = pull(annpack, registry, "tampered:v1", into, signed["pub"], check=1)
    assert "base/pack.annpack" in r.err and digest in r.err and "tampered" in r.err, r
    assert not into.exists()
    r = reg(annpack, registry, "registry", "download", "--version", "v1", "--out",
            tmp_path / "dl", project="tampered", check=1)
    assert "base/pack.annpack" in r.err and not (tmp_path / "dl").exists()
    blob.write_bytes(signed["v1"].joinpath("base/pack.annpack").read_bytes())
    assert up["digest"]


def test_wrong_or_missing_credentials(annpack, registry, signed, tmp_path):
    bad = tmp_path / "bad"
    bad.write_text(f"{USER}:wrong\n")
    r = annpack("registry", "list", "--org", "demo", "--project", "search", "--auth-file", bad,
                "--registry", registry.url, check=1)
    assert f"registry {registry.url} refused the credentials for demo/search (HTTP 401)" in r.err
    r = annpack("registry", "list", "--org", "demo", "--project", "search", "--registry",
                registry.url, check=1)
    assert "none were given" in r.err
    r = annpack("pull", f"{registry.url}/demo/search:v1", "--into", tmp_path / "ps",
                "--pubkey", signed["pub"], "--auth-file", bad, check=1)
    assert "refused the credentials" in r.err and not (tmp_path / "ps").exists()
    auth = tmp_path / "auth.json"
    import base64
    host = registry.url.split("://")[1]
    auth.write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()}}}))
    annpack("registry", "list", "--org", "demo", "--project", "search", "--auth-file", auth,
            "--registry", registry.url, check=0)
    r = annpack("registry", "list", "--org", "demo", "--project", "search", "--registry",
                "ftp://x", check=2)
    assert "must start with http:// or https://" in r.err


def test_pull_resumes_a_cut_transfer(annpack, registry, signed, tmp_path):
    reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", signed["v1"],
        project="resume", check=0)
    proxy = CutProxy(registry.port)
    try:
        proxy.cut_after = 4000
        into = tmp_path / "ps"
        r = pull(annpack, registry, "resume:v1", into, signed["pub"], url=proxy.url, check=1)
        assert "run again to resume" in r.err and not into.exists(), r
        partial = list((tmp_path / ".ps.store/blobs/sha256").glob("*.partial"))
        assert len(partial) == 1 and partial[0].stat().st_size == 4000
        proxy.cut_after = None
        proxy.seen.clear()
        p = pull(annpack, registry, "resume:v1", into, signed["pub"], url=proxy.url,
                 check=0).json()
        assert p["resumed"] == 1 and trees_equal(into, signed["v1"])[0]
        assert any(rng == "bytes=4000-" for _, rng in proxy.seen), proxy.seen
    finally:
        proxy.stop()


def test_bearer_token_flow(annpack, signed, tmp_path):
    ts = TokenServer(tmp_path / "token").start()
    r = Registry(tmp_path / "reg", auth="token", token_server=ts)
    try:
        r.start()
        env = {"ANNPACK_REGISTRY_URL": r.url}
        annpack("registry", "upload", "--org", "demo", "--project", "tok", "--version", "v1",
                "--pack-dir", signed["v1"], "--auth-file", r.userpass, env=env, check=0)
        scopes = [q["path"] for q in ts.requests if q["user"] == USER]
        assert any("scope=repository%3Ademo%2Ftok%3Apush%2Cpull" in s or
                   "scope=repository%3Ademo%2Ftok%3Apull%2Cpush" in s for s in scopes), scopes
        # The reader may pull but not push.
        p = annpack("pull", f"{r.url}/demo/tok:v1", "--into", tmp_path / "ps", "--pubkey",
                    signed["pub"], "--auth-file", r.reader_pass, check=0).json()
        assert p["version"] == 1
        x = annpack("registry", "upload", "--org", "demo", "--project", "tok", "--version",
                    "v2", "--pack-dir", signed["v2"], "--auth-file", r.reader_pass, env=env,
                    check=1)
        assert "HTTP 401" in x.err or "denied" in x.err, x
        bad = tmp_path / "bad"
        bad.write_text(f"{READER}:nope\n")
        x = annpack("registry", "list", "--org", "demo", "--project", "tok", "--auth-file", bad,
                    env=env, check=1)
        assert "token server" in x.err and "refused the credentials (HTTP 401)" in x.err, x
        # A static token (ANNPACK_REGISTRY_TOKEN) is sent as it is.
        tok = ts.sign({"iss": "annpack-test-issuer", "sub": READER, "aud": "annpack-registry",
                       "exp": 2**31 - 1, "nbf": 0, "iat": 0, "jti": "static",
                       "access": [{"type": "repository", "name": "demo/tok",
                                   "actions": ["pull"]}]})
        lst = annpack("registry", "list", "--org", "demo", "--project", "tok",
                      env=dict(env, ANNPACK_REGISTRY_TOKEN=tok), check=0).json()
        assert [v["version"] for v in lst["versions"]] == ["v1"]
    finally:
        r.stop()
        ts.stop()


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jsonschema: draft-04 metaschema
def test_skopeo_reads_it_and_the_oci_schemas_accept_it(annpack, registry, signed, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    reg(annpack, registry, "registry", "upload", "--version", "v2", "--pack-dir", signed["v2"],
        project="interop", check=0)
    reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version", "v2",
        project="interop", check=0)
    host = registry.url.split("://")[1]

    def skopeo(ref):
        r = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                            f"{USER}:{PASSWORD}", f"docker://{host}/demo/interop{ref}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    index = json.loads(skopeo(":v2"))
    assert index["artifactType"] == "application/vnd.annpack.packset.v1"
    members = [json.loads(skopeo("@" + m["digest"])) for m in index["manifests"]]
    alias = json.loads(skopeo(":latest"))
    assert alias["artifactType"] == "application/vnd.annpack.alias.v1"
    titles = {(m["annotations"]["vnd.annpack.path"], l["annotations"][
        "org.opencontainers.image.title"]): l["digest"] for m in members for l in m["layers"]}
    assert titles[("base", "pack.annpack")] == "sha256:" + sha256_hex(
        signed["v2"] / "base/pack.annpack")
    assert ("deltas/0001.delta", "tombstones.jsonl") in titles
    assert (".", "pack.manifest.json.sig") in titles
    if not SCHEMAS.is_dir():
        pytest.skip("golang-github-opencontainers-image-spec-dev (the OCI schemas) missing")
    store = {}
    for f in SCHEMAS.glob("*.json"):
        s = json.loads(f.read_text())
        store[s.get("id", s.get("$id", f.name))] = s
        store["https://opencontainers.org/schema/" + f.name.replace("-schema", "").replace(
            ".json", "")] = s
        store[f.name] = s
    def validate(doc, name):
        schema = json.loads((SCHEMAS / name).read_text())
        resolver = jsonschema.RefResolver(base_uri="file://" + str(SCHEMAS) + "/",
                                          referrer=schema, store=store)
        jsonschema.validate(doc, schema, resolver=resolver)
    validate(index, "image-index-schema.json")
    validate(alias, "image-index-schema.json")
    for m in members:
        validate(m, "image-manifest-schema.json")
    # And a broken one is rejected by the same validator (the check can fail).
    with pytest.raises(jsonschema.ValidationError):
        validate({"schemaVersion": 2, "config": {}, "layers": "x"}, "image-manifest-schema.json")


def test_single_pack_upload_sign_pull(annpack, registry, signed, tiny_pack, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(tiny_pack, pack)
    # --sign-key signs before pushing; the manifest has one layer per file plus the signature.
    up = reg(annpack, registry, "registry", "upload", "--version", "p1", "--pack-dir", pack,
             "--sign-key", signed["pem"], project="single", check=0).json()
    assert up["kind"] == "pack" and "packset_version" not in up
    assert (pack / "pack.manifest.json.sig").exists()
    st, _, body = registry.request(f"/v2/demo/single/manifests/p1",
                                   accept="application/vnd.oci.image.manifest.v1+json")
    m = json.loads(body)
    assert st == 200 and m["artifactType"] == "application/vnd.annpack.pack.v1"
    files = json.loads((pack / "pack.manifest.json").read_text())["files"]
    titles = [l["annotations"]["org.opencontainers.image.title"] for l in m["layers"]]
    assert titles == ["pack.manifest.json", *files, "pack.manifest.json.sig"]
    for l in m["layers"][1:-1]:
        name = l["annotations"]["org.opencontainers.image.title"]
        assert l["digest"] == "sha256:" + files[name]["sha256"] and l["size"] == files[name]["size"]
    into = tmp_path / "srv" / "pack"
    p = pull(annpack, registry, "single:p1", into, signed["pub"], check=0).json()
    assert p["status"] == "switched" and trees_equal(into, pack)[0]
    # A different pack under a new version replaces it as a whole (packs have no version).
    other = tmp_path / "other"
    annpack.ok("build", "--input", EXAMPLES / "delta_add.csv", "--text-col", "text", "--id-col",
               "id", "--output", other, "--lists", 2, "--seed", 1)
    reg(annpack, registry, "registry", "upload", "--version", "p2", "--pack-dir", other,
        "--sign-key", signed["pem"], project="single", check=0)
    p = pull(annpack, registry, "single:p2", into, signed["pub"], check=0).json()
    assert p["status"] == "switched" and trees_equal(into, other)[0]
    # An unsigned pack does not pass a host's pull.
    unsigned = tmp_path / "unsigned"
    shutil.copytree(tiny_pack, unsigned)
    reg(annpack, registry, "registry", "upload", "--version", "u1", "--pack-dir", unsigned,
        project="single", check=0)
    r = pull(annpack, registry, "single:u1", tmp_path / "u", signed["pub"], check=1)
    assert "does not verify with" in r.err and not (tmp_path / "u").exists(), r


def test_help_and_usage_errors(annpack):
    for args in (("registry", "--help"), ("pull", "--help")):
        r = annpack(*args, check=0)
        assert "usage: annpack" in r.out and "--registry" in r.out
    r = annpack("registry", "upload", "--org", "demo", "--project", "x", check=2)
    assert "--version is required" in r.err
    r = annpack("registry", "upload", "--org", "Demo", "--project", "x", "--version", "v1",
                "--pack-dir", ".", "--registry", "http://127.0.0.1:1", "--skip-verify", check=2)
    assert "lowercase" in r.err
    r = annpack("registry", "alias", "set", "--org", "demo", "--project", "x", "--alias",
                "bad tag", "--version", "v1", check=2)
    assert "an OCI tag" in r.err
    r = annpack("pull", "demo/x", "--into", "d", "--pubkey", "k", check=2)
    assert "expected ORG/PROJECT:TAG" in r.err
    r = annpack("pull", "demo/x:v1", "--into", "d", "--pubkey", "k", "--interval", "soon",
                check=2)
    assert "--interval soon" in r.err
    r = annpack("registry", "frobnicate", "--org", "a", "--project", "b", check=2)
    assert "unknown subcommand" in r.err


def test_a_blob_longer_than_its_size_is_cut_off(annpack, registry, signed, tmp_path):
    """A registry (or anything in between) that sends more bytes than the descriptor says is
    stopped at the size (it cannot fill the host's disk); the pull fails naming the file."""
    reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", signed["v1"],
        project="longer", check=0)
    proxy = CutProxy(registry.port)
    try:
        proxy.oversize = 4 << 20
        into = tmp_path / "ps"
        r = pull(annpack, registry, "longer:v1", into, signed["pub"], url=proxy.url, check=1)
        assert "more bytes than the artifact's size" in r.err and "pack.manifest.json" in r.err, r
        assert not into.exists()
        assert not list((tmp_path / ".ps.store/blobs/sha256").glob("*.partial"))
    finally:
        proxy.stop()


def test_follow_pulls_when_the_alias_moves(annpack, registry, signed, tmp_path):
    import signal
    import time
    for v in ("v1", "v2"):
        reg(annpack, registry, "registry", "upload", "--version", v, "--pack-dir", signed[v],
            project="follow", check=0)
    reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version", "v1",
        project="follow", check=0)
    into, marks = tmp_path / "ps", tmp_path / "updates"
    out, err = open(tmp_path / "out", "w"), open(tmp_path / "err", "w")
    p = subprocess.Popen([annpack.exe, "pull", f"{registry.url}/demo/follow:latest", "--into",
                          into, "--pubkey", signed["pub"], "--auth-file", registry.userpass,
                          "--follow", "--interval", "200ms", "--on-update",
                          f"echo updated >> {marks}"], stdout=out, stderr=err)

    def wait_for(cond, what):
        deadline = time.time() + 60
        while not cond():
            assert time.time() < deadline and p.poll() is None, (what, (tmp_path / "err").read_text())
            time.sleep(0.05)

    def lines():
        return [json.loads(l) for l in (tmp_path / "out").read_text().splitlines()]
    try:
        wait_for(lambda: len(lines()) == 1, "the first pull")
        assert lines()[0]["version"] == 1 and trees_equal(into, signed["v1"])[0]
        time.sleep(0.6)
        assert len(lines()) == 1  # nothing moved: HEADs only, no pull
        reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version",
            "v2", project="follow", check=0)
        wait_for(lambda: len(lines()) == 2, "the pull of v2")
        assert lines()[1]["version"] == 2 and trees_equal(into, signed["v2"])[0]
        wait_for(lambda: marks.exists() and marks.read_text().count("updated") == 2, "--on-update")
        reg(annpack, registry, "registry", "alias", "set", "--alias", "latest", "--version",
            "v1", project="follow", check=0)
        wait_for(lambda: "refusing version 1" in (tmp_path / "err").read_text(), "the refusal")
        time.sleep(0.6)
        # Refused once, not retried every interval; DIR still v2.
        assert (tmp_path / "err").read_text().count("refusing version 1") == 1
        assert trees_equal(into, signed["v2"])[0]
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        out.close()
        err.close()


def test_upload_refuses_a_damaged_directory(annpack, registry, signed, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(signed["v1"], bad)
    data = bytearray((bad / "base/pack.meta.idx").read_bytes())
    data[10] ^= 1
    (bad / "base/pack.meta.idx").write_bytes(bytes(data))
    r = reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", bad,
            project="damaged", check=1)
    assert "pack.meta.idx" in r.err, r
    # Even with --skip-verify the blob is pushed under the digest the manifest declares,
    # so the registry's own check refuses it, naming the file; no version is tagged.
    r = reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", bad,
            "--skip-verify", project="damaged", check=1)
    assert "base/pack.meta.idx" in r.err and "DIGEST_INVALID" in r.err, r
    assert reg(annpack, registry, "registry", "list", project="damaged",
               check=0).json()["versions"] == []


@pytest.mark.parametrize("title", ["../evil", "/etc/evil", "a/../../evil", ""])
def test_unsafe_titles_from_the_registry_are_refused(annpack, registry, signed, tmp_path,
                                                     title):
    """A manifest pushed by someone else, whose layer title would escape DIR: refused
    before anything is written."""
    import base64
    import urllib.request
    reg(annpack, registry, "registry", "upload", "--version", "v1", "--pack-dir", signed["v1"],
        project="evil", check=0)
    empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "artifactType": "application/vnd.annpack.pack.v1",
         "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty,
                    "size": 2},
         "layers": [{"mediaType": "application/vnd.annpack.file.v1", "digest": empty, "size": 2,
                     "annotations": {"org.opencontainers.image.title": title}}]}
    req = urllib.request.Request(f"{registry.url}/v2/demo/evil/manifests/bad", method="PUT",
                                 data=json.dumps(m).encode(), headers={
                                     "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                                     "Authorization": "Basic " + base64.b64encode(
                                         f"{USER}:{PASSWORD}".encode()).decode()})
    urllib.request.urlopen(req, timeout=30).read()
    out = tmp_path / "sub" / "ps"
    r = pull(annpack, registry, "evil:bad", out, signed["pub"], check=1)
    assert "unsafe file name" in r.err, r
    assert sorted(p.name for p in tmp_path.rglob("*")) == [".ps.store.lock", "sub"]
    assert not (tmp_path / "evil").exists() and not (tmp_path / "sub" / "evil").exists()


def test_unreachable_registry_is_one_clear_error(annpack, signed, tmp_path):
    from mountlib import free_port
    url = f"http://127.0.0.1:{free_port()}"
    r = annpack("registry", "list", "--org", "demo", "--project", "x", "--registry", url,
                check=1)
    assert r.err.count("\n") == 1 and url in r.err and "GET" in r.err, r
    r = annpack("pull", f"{url}/demo/x:v1", "--into", tmp_path / "ps", "--pubkey",
                signed["pub"], check=1)
    assert url in r.err and not (tmp_path / "ps").exists(), r
