/* Signatures and the trust policy, called directly (include/annpack/trust.h, sign.h):
 * signing (ap_dir_sign, ap_dir_sign_ex: expiry, a layer, an unverifiable directory, a
 * sig_path that is not a signature), checking a manifest's signature
 * (ap_manifest_check_signature) and opening under a policy (ap_view_open_trusted: keys,
 * key rotation, a wrong key, a missing, short, long or stale signature, expiry, the version
 * floor, hashing or not). Each refusal with its status and message; each success with
 * what the result says. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdlib.h>
#include <time.h>

#include "annpack/trust.h"
#include "packs.h"

static ap_err err;
static ap_seckey *ka, *kb;
static ap_pubkey pa, pb;

/* Opens dir under p and closes it; the result in *r. */
static ap_status open_under(const char *dir, const ap_trust_policy *p, ap_trust_result *r)
{
    ap_view *v = NULL;
    memset(r, 0x5a, sizeof *r);
    ap_status st = ap_view_open_trusted(dir, p, &v, r, &err);
    CHECK((st == AP_OK) == (v != NULL));
    ap_view_close(v);
    return st;
}

static void signing_and_keys(void)
{
    char *p = pk_build("pack", 0, 0);
    ap_trust_result r;
    const ap_trust_policy none = {0}, by_a = {.keys = &pa, .nkeys = 1},
                          by_b = {.keys = &pb, .nkeys = 1};

    /* Unsigned: fine without keys, refused with them. */
    CHECK_OK(open_under(p, &none, &r), &err);
    CHECK(!r.signature_present && !r.signature_checked && !r.key_id[0] && r.version == 0 &&
          r.expires == -1);
    CHECK_OK(open_under(p, NULL, &r), &err);
    CHECK_ERR(open_under(p, &by_a, &r), AP_ERR_NOTFOUND, &err,
              "/pack.manifest.json.sig: signature missing (the manifest is not signed)");

    /* Signed by A. */
    char kid[AP_KEYID_HEX];
    CHECK_OK(ap_dir_sign(p, ka, NULL, kid, &err), &err);
    CHECK(!strcmp(kid, pa.keyid));
    CHECK_OK(open_under(p, &by_a, &r), &err);
    CHECK(r.signature_present && r.signature_checked && !strcmp(r.key_id, pa.keyid));
    /* Without keys a signature is present but proves nothing. */
    CHECK_OK(open_under(p, &none, &r), &err);
    CHECK(r.signature_present && !r.signature_checked && !r.key_id[0]);
    /* Another key: refused, naming the key ids tried. */
    char want[160];
    snprintf(want, sizeof want, "signature does not verify with any of 1 key(s) (key ids: %s)",
             pb.keyid);
    CHECK_ERR(open_under(p, &by_b, &r), AP_ERR_VERIFY, &err, want);
    /* Rotation: any one of several keys. */
    ap_pubkey both[2] = {pb, pa};
    const ap_trust_policy rot = {.keys = both, .nkeys = 2};
    CHECK_OK(open_under(p, &rot, &r), &err);
    CHECK(!strcmp(r.key_id, pa.keyid));

    /* ap_manifest_check_signature over the exact bytes. */
    char *man = pk_join(p, AP_MANIFEST), *sig = pk_join(p, AP_SIGNATURE);
    size_t len;
    char *bytes = pk_slurp(man, &len);
    char got[AP_KEYID_HEX] = "";
    CHECK_OK(ap_manifest_check_signature(p, bytes, len, both, 2, NULL, got, &err), &err);
    CHECK(!strcmp(got, pa.keyid));
    CHECK_ERR(ap_manifest_check_signature(p, bytes, len, &pb, 1, NULL, got, &err), AP_ERR_VERIFY,
              &err, "does not verify");
    bytes[len - 2] ^= 1; /* one byte of the manifest */
    CHECK_ERR(ap_manifest_check_signature(p, bytes, len, &pa, 1, NULL, got, &err), AP_ERR_VERIFY,
              &err, "does not verify");
    bytes[len - 2] ^= 1;
    CHECK_ERR(ap_manifest_check_signature(p, bytes, len, &pa, 1, "/nonexistent/x.sig", got, &err),
              AP_ERR_NOTFOUND, &err,
              "/nonexistent/x.sig: signature missing (the manifest is not signed)");

    /* The signature file: its size, and a manifest changed after signing. */
    size_t slen;
    char *good = pk_slurp(sig, &slen);
    CHECK(slen == AP_SIG_BYTES);
    char big[AP_SIG_BYTES + 1];
    memcpy(big, good, AP_SIG_BYTES);
    big[AP_SIG_BYTES] = '\n';
    pk_put(sig, big, sizeof big);
    CHECK_ERR(open_under(p, &by_a, &r), AP_ERR_FORMAT, &err,
              "/pack.manifest.json.sig: a signature is 64 raw bytes, this file has 65");
    CHECK_ERR(ap_manifest_check_signature(p, bytes, len, &pa, 1, NULL, got, &err), AP_ERR_FORMAT,
              &err, "a signature is 64 raw bytes, this file has 65");
    char huge[5000] = {0};
    pk_put(sig, huge, sizeof huge);
    CHECK_ERR(open_under(p, &by_a, &r), AP_ERR_FORMAT, &err,
              "/pack.manifest.json.sig: a signature is 64 raw bytes, this file is larger");
    pk_put(sig, good, slen);
    CHECK_OK(open_under(p, &by_a, &r), &err);
    CHECK(pk_edit(man, "\"metric\":\t\"dot\"", "\"metric\":  \"dot\""));
    CHECK_ERR(open_under(p, &by_a, &r), AP_ERR_VERIFY, &err, "does not verify");
    CHECK_OK(open_under(p, &none, &r), &err); /* no key: nothing to check it against */

    /* A signature kept elsewhere (sig_path). */
    char *elsewhere = pk_path("pack.sig");
    CHECK_OK(ap_dir_sign(p, ka, elsewhere, kid, &err), &err);
    const ap_trust_policy at = {.keys = &pa, .nkeys = 1, .sig_path = elsewhere};
    CHECK_OK(open_under(p, &at, &r), &err);
    CHECK_ERR(open_under(p, &by_a, &r), AP_ERR_VERIFY, &err, "does not verify"); /* the stale one */

    free(elsewhere);
    free(good);
    free(bytes);
    free(sig);
    free(man);
    free(p);
}

static void sign_refusals(void)
{
    char kid[AP_KEYID_HEX], exp[AP_RFC3339_LEN];
    /* An unverifiable directory is never signed. */
    char *p = pk_build("bad", 0, 0);
    char *annp = pk_join(p, AP_ANNPACK);
    pk_flip(annp, 100, 1);
    CHECK_ERR(ap_dir_sign(p, ka, NULL, kid, &err), AP_ERR_VERIFY, &err, "refusing to sign ");
    CHECK_ERR(ap_dir_sign(p, ka, NULL, kid, &err), AP_ERR_VERIFY, &err, ": it does not verify: ");
    CHECK_ERR(ap_dir_sign(p, ka, NULL, kid, &err), AP_ERR_VERIFY, &err,
              "/pack.annpack: header and centroids (range 0, ");
    char *sig = pk_join(p, AP_SIGNATURE);
    CHECK(access(sig, F_OK) != 0);
    free(sig);
    free(annp);
    free(p);

    /* A sig_path that exists and is not a signature: only with force. */
    p = pk_build("notsig", 0, 0);
    char *file = pk_path("notes.txt");
    fx_put(file, "abc", 3);
    ap_sign_opts o = {.sig_path = file};
    CHECK_ERR(ap_dir_sign_ex(p, ka, &o, kid, exp, &err), AP_ERR_EXISTS, &err,
              "notes.txt exists and is not a signature (a 64-byte file); refusing to overwrite it "
              "(use --force)");
    size_t len;
    char *still = pk_slurp(file, &len);
    CHECK(len == 3 && !memcmp(still, "abc", 3));
    free(still);
    o.force = true;
    CHECK_OK(ap_dir_sign_ex(p, ka, &o, kid, exp, &err), &err);
    free(file);

    /* Expiry: a duration or a future time; anything else is refused before signing. */
    ap_sign_opts e = {.expires = "soon"};
    CHECK_ERR(ap_dir_sign_ex(p, ka, &e, kid, exp, &err), AP_ERR_ARG, &err,
              "\"soon\" is neither a duration (a positive integer and one of s, m, h, d, w: 90s, "
              "12h, 30d) nor an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
    e.expires = "2001-01-01T00:00:00Z";
    CHECK_ERR(ap_dir_sign_ex(p, ka, &e, kid, exp, &err), AP_ERR_ARG, &err,
              "\"2001-01-01T00:00:00Z\" is not in the future");
    e.expires = "0d";
    CHECK_ERR(ap_dir_sign_ex(p, ka, &e, kid, exp, &err), AP_ERR_ARG, &err,
              "a duration must be positive");
    e.expires = "2d";
    long long before = (long long)time(NULL);
    CHECK_OK(ap_dir_sign_ex(p, ka, &e, kid, exp, &err), &err);
    long long t = 0;
    CHECK_OK(ap_parse_rfc3339_utc(exp, &t, &err), &err);
    CHECK(t >= before + 2 * 86400 && t <= (long long)time(NULL) + 2 * 86400);
    ap_trust_result r;
    const ap_trust_policy by_a = {.keys = &pa, .nkeys = 1};
    CHECK_OK(open_under(p, &by_a, &r), &err);
    CHECK(r.expires == t && !strcmp(r.key_id, pa.keyid));
    free(p);

    /* A layer of a packset cannot take an expiry of its own. */
    char *ps = pk_build("ps", 1, 0);
    char *base = pk_join(ps, "base");
    e.expires = "1d";
    CHECK_ERR(ap_dir_sign_ex(base, ka, &e, kid, exp, &err), AP_ERR_ARG, &err,
              "/base is a layer of the packset ");
    CHECK_ERR(ap_dir_sign_ex(base, ka, &e, kid, exp, &err), AP_ERR_ARG, &err,
              ": its manifest bytes are pinned by the packset's root manifest; set the expiry "
              "when signing the packset");
    free(base);
    free(ps);
}

static void policy(void)
{
    ap_trust_result r;
    /* An expired manifest: refused unless allowed. */
    char *p = pk_build("expired", 0, 0);
    char *man = pk_join(p, AP_MANIFEST);
    CHECK(pk_edit(man, "\"metric\":", "\"expires\":\t\"2001-02-03T04:05:06Z\",\n\t\"metric\":"));
    const ap_trust_policy strict = {0}, lax = {.allow_expired = true};
    CHECK_ERR(open_under(p, &strict, &r), AP_ERR_VERIFY, &err,
              "/pack.manifest.json: expired at 2001-02-03T04:05:06Z (pass --allow-expired to "
              "accept it)");
    CHECK_OK(open_under(p, &lax, &r), &err);
    long long t;
    CHECK_OK(ap_parse_rfc3339_utc("2001-02-03T04:05:06Z", &t, &err), &err);
    CHECK(r.expires == t);
    CHECK(pk_edit(man, "\"2001-02-03T04:05:06Z\"", "\"next tuesday\""));
    CHECK_ERR(open_under(p, &lax, &r), AP_ERR_FORMAT, &err,
              "\"next tuesday\" is not an RFC 3339 UTC time");
    free(man);
    free(p);

    /* The version floor of a packset (a reload must not go back). */
    char *ps = pk_packset_with_delta("ps"); /* version 2 */
    const ap_trust_policy floor2 = {.min_version = 2},
                          newer2 = {.min_version = 2, .strict_version = true},
                          floor3 = {.min_version = 3};
    CHECK_OK(open_under(ps, &floor2, &r), &err);
    CHECK(r.version == 2);
    CHECK_ERR(open_under(ps, &newer2, &r), AP_ERR_VERIFY, &err,
              "/ps: version 2 is not newer than 2 (replay of an older packset?)");
    CHECK_ERR(open_under(ps, &floor3, &r), AP_ERR_VERIFY, &err,
              "/ps: version 2 is not newer than 3 (replay of an older packset?)");

    /* hash_files: without it only the manifests (and tombstones) are read and checked. */
    char *meta = pk_join(ps, "base/" AP_META_JSONL);
    pk_flip(meta, 3, 1);
    const ap_trust_policy light = {0}, hashing = {.hash_files = true};
    CHECK_OK(open_under(ps, &light, &r), &err);
    CHECK_ERR(open_under(ps, &hashing, &r), AP_ERR_VERIFY, &err,
              "/base/pack.meta.jsonl: chunk 0 (range 0, 1684 bytes at 0) does not match "
              "pack.digests");
    pk_flip(meta, 3, 1);
    CHECK_OK(open_under(ps, &hashing, &r), &err);
    char *tomb = pk_join(ps, "deltas/0001.delta/" AP_TOMBSTONES);
    CHECK(pk_edit(tomb, "3", "4"));
    CHECK_ERR(open_under(ps, &light, &r), AP_ERR_VERIFY, &err,
              "/deltas/0001.delta/tombstones.jsonl: sha256 mismatch");
    free(tomb);
    free(meta);
    free(ps);

    /* A signed packset: the signature is over the root manifest, checked before it is
     * parsed; a change made without the key leaves it stale. */
    ps = pk_packset_with_delta("signed");
    char kid[AP_KEYID_HEX];
    CHECK_OK(ap_dir_sign(ps, kb, NULL, kid, &err), &err);
    const ap_trust_policy by_b = {.keys = &pb, .nkeys = 1, .hash_files = true};
    CHECK_OK(open_under(ps, &by_b, &r), &err);
    CHECK(r.version == 2 && !strcmp(r.key_id, pb.keyid));
    char *root = pk_join(ps, AP_MANIFEST);
    CHECK(pk_edit(root, "\"version\":\t2", "\"version\":\t9"));
    CHECK_ERR(open_under(ps, &by_b, &r), AP_ERR_VERIFY, &err, "does not verify");
    free(root);
    free(ps);
}

int main(void)
{
    pk_root = fx_scratch("trust");
    if (ap_seckey_generate(&ka, &err) || ap_seckey_generate(&kb, &err)) fx_die("keys", &err);
    ap_seckey_public(ka, &pa);
    ap_seckey_public(kb, &pb);
    signing_and_keys();
    sign_refusals();
    policy();
    ap_seckey_free(ka);
    ap_seckey_free(kb);
    return check_done();
}
