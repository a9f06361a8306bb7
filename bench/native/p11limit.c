/*
 * p11limit: the C limit the PicoHsm benchmarks compare with. One process, one session, one login,
 * the bare PKCS#11 calls a backup, a restore and a listing need, and the same durable file write
 * per key as the module (temporary file, fsync, rename). Built by bench/Invoke-ScaleBench.ps1 with
 * the PKCS#11 header of Debian's libp11-kit-dev.
 *
 *   p11limit populate <module> <token> <pin> <n>          n keys (RSA-2048, EC P-256, AES-256 in turn) by
 *                                                         C_CopyObject of three generated ones, ids 00000001..
 *   p11limit wrap     <module> <token> <pin> <dkekid> <dir>    C_WrapKey (AES-KWP) of every private/secret key
 *   p11limit unwrap   <module> <token> <pin> <dkekid> <dir>    C_UnwrapKey of every file written by wrap
 *   p11limit unwrappub <module> <token> <pin> <dkekid> <dir>   the same, and after each private key the public-key
 *                                                         object the module's restore also makes (C_CreateObject)
 *   p11limit attrs    <module> <token> <pin>              one C_GetAttributeValue of the listing's attributes per key
 *   p11limit label    <module> <token> <pin> <label>      the keys with that label (one C_FindObjects), their attributes;
 *                                                         timed as a whole process it is the start-up limit: load and
 *                                                         initialise the module, open, log in, find one key
 *   p11limit labelid  <module> <token> <pin> <label>      the same, then one C_FindObjects of each found key's CKA_ID:
 *                                                         the second search a listing by label needs to find a key's
 *                                                         public key and certificate under any label
 *
 * Prints "<mode> <count> <seconds>".
 */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR p;
static CK_SESSION_HANDLE s;

#define CK(call) do { CK_RV rv_ = (call); if (rv_ != CKR_OK) { fprintf(stderr, "%s: 0x%lx\n", #call, (unsigned long)rv_); exit(2); } } while (0)

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

static void open_token(const char *module, const char *label, const char *pin) {
    void *h = dlopen(module, RTLD_NOW);
    if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); exit(2); }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    CK(gfl(&p));
    CK(p->C_Initialize(NULL));
    CK_ULONG n = 0;
    CK(p->C_GetSlotList(CK_TRUE, NULL, &n));
    CK_SLOT_ID *slots = calloc(n, sizeof *slots);
    CK(p->C_GetSlotList(CK_TRUE, slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (p->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
        char l[33]; memcpy(l, ti.label, 32); l[32] = 0;
        for (int j = 31; j >= 0 && l[j] == ' '; j--) l[j] = 0;
        if (strcmp(l, label) == 0) {
            CK(p->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
            CK(p->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
            free(slots);
            return;
        }
    }
    fprintf(stderr, "no token '%s'\n", label);
    exit(2);
}

static CK_ULONG find(CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_OBJECT_HANDLE *out, CK_ULONG max) {
    CK_ULONG got = 0, total = 0;
    CK(p->C_FindObjectsInit(s, tmpl, count));
    do {
        CK(p->C_FindObjects(s, out + total, max - total, &got));
        total += got;
    } while (got > 0 && total < max);
    CK(p->C_FindObjectsFinal(s));
    return total;
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static CK_ULONG parse_hex(const char *hex, CK_BYTE *out) {
    CK_ULONG n = strlen(hex) / 2;
    for (CK_ULONG i = 0; i < n; i++) out[i] = (CK_BYTE)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    return n;
}

static CK_OBJECT_HANDLE dkek(const char *idhex) {
    CK_BYTE id[64]; CK_ULONG idlen = parse_hex(idhex, id);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_ID, id, idlen } };
    CK_OBJECT_HANDLE h; 
    if (find(t, 2, &h, 1) != 1) { fprintf(stderr, "no DKEK with id %s\n", idhex); exit(2); }
    return h;
}

/* The module's durable write: a temporary file beside the target, fsync, rename. */
static void durable_write(const char *dir, const char *name, const CK_BYTE *data, CK_ULONG len) {
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) { perror(path); exit(2); }
}

static CK_OBJECT_HANDLE *all_keys(CK_ULONG *count, CK_OBJECT_HANDLE skip) {
    static CK_OBJECT_HANDLE hs[200000];
    CK_OBJECT_CLASS cp = CKO_PRIVATE_KEY, cs = CKO_SECRET_KEY;
    CK_ATTRIBUTE tp[] = { { CKA_CLASS, &cp, sizeof cp } }, ts[] = { { CKA_CLASS, &cs, sizeof cs } };
    CK_ULONG n = find(tp, 1, hs, 200000);
    n += find(ts, 1, hs + n, 200000 - n);
    CK_ULONG k = 0;
    for (CK_ULONG i = 0; i < n; i++) if (hs[i] != skip) hs[k++] = hs[i];
    *count = k;
    return hs;
}

static void populate(int n) {
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG bits = 2048, aeslen = 32;
    CK_BYTE e[] = { 1, 0, 1 };
    CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_BYTE tid[] = { 0xff, 0xff, 0xff, 0xf0 };
    CK_ATTRIBUTE rpub[] = { { CKA_TOKEN, &no, 1 }, { CKA_MODULUS_BITS, &bits, sizeof bits }, { CKA_PUBLIC_EXPONENT, e, 3 }, { CKA_VERIFY, &yes, 1 } };
    CK_ATTRIBUTE priv[] = { { CKA_TOKEN, &no, 1 }, { CKA_PRIVATE, &yes, 1 }, { CKA_SENSITIVE, &yes, 1 }, { CKA_EXTRACTABLE, &yes, 1 }, { CKA_SIGN, &yes, 1 } };
    CK_ATTRIBUTE epub[] = { { CKA_TOKEN, &no, 1 }, { CKA_EC_PARAMS, p256, sizeof p256 }, { CKA_VERIFY, &yes, 1 } };
    CK_ATTRIBUTE aes[] = { { CKA_TOKEN, &no, 1 }, { CKA_VALUE_LEN, &aeslen, sizeof aeslen }, { CKA_SENSITIVE, &yes, 1 }, { CKA_EXTRACTABLE, &yes, 1 }, { CKA_ENCRYPT, &yes, 1 }, { CKA_DECRYPT, &yes, 1 }, { CKA_ID, tid, 4 } };
    CK_MECHANISM mr = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 }, me = { CKM_EC_KEY_PAIR_GEN, NULL, 0 }, ma = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_OBJECT_HANDLE pub[2], prv[2], sec;
    CK(p->C_GenerateKeyPair(s, &mr, rpub, 4, priv, 5, &pub[0], &prv[0]));
    CK(p->C_GenerateKeyPair(s, &me, epub, 3, priv, 5, &pub[1], &prv[1]));
    CK(p->C_GenerateKey(s, &ma, aes, 7, &sec));
    for (int i = 1; i <= n; i++) {
        CK_BYTE id[4] = { (CK_BYTE)(i >> 24), (CK_BYTE)(i >> 16), (CK_BYTE)(i >> 8), (CK_BYTE)i };
        char label[32]; snprintf(label, sizeof label, "key-%d", i);
        CK_ATTRIBUTE t[] = { { CKA_TOKEN, &yes, 1 }, { CKA_ID, id, 4 }, { CKA_LABEL, label, strlen(label) } };
        CK_OBJECT_HANDLE out;
        int kind = (i - 1) % 3;
        if (kind < 2) {
            CK(p->C_CopyObject(s, prv[kind], t, 3, &out));
            CK(p->C_CopyObject(s, pub[kind], t, 3, &out));
        } else {
            CK(p->C_CopyObject(s, sec, t, 3, &out));
        }
    }
}

static void wrap(const char *idhex, const char *dir) {
    CK_OBJECT_HANDLE k = dkek(idhex);
    CK_ULONG n; CK_OBJECT_HANDLE *hs = all_keys(&n, k);
    CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    static CK_BYTE buf[8192];
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls; CK_KEY_TYPE kt; CK_BYTE id[64];
        CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_ID, id, sizeof id } };
        CK(p->C_GetAttributeValue(s, hs[i], a, 3));
        CK_ULONG len = sizeof buf - 2;
        CK(p->C_WrapKey(s, &m, k, hs[i], buf + 2, &len));
        buf[0] = (CK_BYTE)cls; buf[1] = (CK_BYTE)kt;
        char name[64]; snprintf(name, sizeof name, "k%lu.bin", (unsigned long)i);
        durable_write(dir, name, buf, len + 2);
    }
    printf("wrapped %lu\n", (unsigned long)n);
}

/* With pub: after each private key, its public-key object as the module's restore makes it
 * (C_CreateObject: class, key type, token, id, the public values). The values are fixed (the
 * token does not check them): what is measured is the token's cost of the second object. */
static void create_public(CK_KEY_TYPE kt, CK_BYTE *id, CK_ULONG idlen) {
    static CK_BYTE modulus[256], point[67];
    CK_BYTE e[] = { 1, 0, 1 };
    CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    memset(modulus, 0xc5, sizeof modulus);
    point[0] = 0x04; point[1] = 65; point[2] = 0x04; memset(point + 3, 0x5a, 64);
    CK_OBJECT_CLASS pc = CKO_PUBLIC_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_HANDLE out;
    if (kt == CKK_RSA) {
        CK_ATTRIBUTE t[] = { { CKA_CLASS, &pc, sizeof pc }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_TOKEN, &yes, 1 }, { CKA_ID, id, idlen },
                             { CKA_VERIFY, &yes, 1 }, { CKA_MODULUS, modulus, sizeof modulus }, { CKA_PUBLIC_EXPONENT, e, sizeof e } };
        CK(p->C_CreateObject(s, t, 7, &out));
    } else {
        CK_ATTRIBUTE t[] = { { CKA_CLASS, &pc, sizeof pc }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_TOKEN, &yes, 1 }, { CKA_ID, id, idlen },
                             { CKA_VERIFY, &yes, 1 }, { CKA_EC_PARAMS, p256, sizeof p256 }, { CKA_EC_POINT, point, sizeof point } };
        CK(p->C_CreateObject(s, t, 7, &out));
    }
}

static void unwrap(const char *idhex, const char *dir, int pub) {
    CK_OBJECT_HANDLE k = dkek(idhex);
    CK_MECHANISM m = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    DIR *d = opendir(dir);
    struct dirent *de;
    static CK_BYTE buf[8192];
    CK_ULONG count = 0;
    CK_BBOOL yes = CK_TRUE;
    while ((de = readdir(d))) {
        if (de->d_name[0] != 'k') continue;
        char path[4096]; snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb"); size_t len = fread(buf, 1, sizeof buf, f); fclose(f);
        CK_OBJECT_CLASS cls = buf[0]; CK_KEY_TYPE kt = buf[1];
        CK_BYTE id[4] = { (CK_BYTE)(count >> 24), (CK_BYTE)(count >> 16), (CK_BYTE)(count >> 8), (CK_BYTE)count };
        CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
                             { CKA_SENSITIVE, &yes, 1 }, { CKA_EXTRACTABLE, &yes, 1 }, { CKA_ID, id, 4 } };
        CK_OBJECT_HANDLE out;
        CK(p->C_UnwrapKey(s, &m, k, buf + 2, len - 2, t, 7, &out));
        if (pub && cls == CKO_PRIVATE_KEY) create_public(kt, id, 4);
        count++;
    }
    closedir(d);
    printf("unwrapped %lu\n", (unsigned long)count);
}

static void attrs(void) {
    CK_ULONG n; CK_OBJECT_HANDLE *hs = all_keys(&n, 0);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls; CK_KEY_TYPE kt; CK_BYTE id[64]; char label[256];
        CK_BBOOL ex, se, ne, sg, de, en, un, wr, dr;
        CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_ID, id, sizeof id },
                             { CKA_LABEL, label, sizeof label }, { CKA_EXTRACTABLE, &ex, 1 }, { CKA_SENSITIVE, &se, 1 },
                             { CKA_NEVER_EXTRACTABLE, &ne, 1 }, { CKA_SIGN, &sg, 1 }, { CKA_DECRYPT, &de, 1 },
                             { CKA_ENCRYPT, &en, 1 }, { CKA_UNWRAP, &un, 1 }, { CKA_WRAP, &wr, 1 }, { CKA_DERIVE, &dr, 1 } };
        p->C_GetAttributeValue(s, hs[i], a, 13); /* some attributes do not apply to every class: CKR_ATTRIBUTE_TYPE_INVALID is expected */
    }
    printf("listed %lu\n", (unsigned long)n);
}

static void label(const char *l, int companions) {
    static CK_OBJECT_HANDLE hs[64], cs[64];
    CK_ATTRIBUTE t[] = { { CKA_LABEL, (void *)l, strlen(l) } };
    CK_ULONG n = find(t, 1, hs, 64);
    CK_BYTE seen[64][64]; CK_ULONG seenLen[64]; int nseen = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_OBJECT_CLASS cls; CK_KEY_TYPE kt; CK_BYTE id[64];
        CK_ATTRIBUTE a[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_KEY_TYPE, &kt, sizeof kt }, { CKA_ID, id, sizeof id } };
        p->C_GetAttributeValue(s, hs[i], a, 3);
        if (!companions || a[2].ulValueLen == CK_UNAVAILABLE_INFORMATION || a[2].ulValueLen > sizeof id) continue;
        int dup = 0;
        for (int j = 0; j < nseen; j++) if (seenLen[j] == a[2].ulValueLen && !memcmp(seen[j], id, a[2].ulValueLen)) dup = 1;
        if (dup || nseen == 64) continue;
        memcpy(seen[nseen], id, a[2].ulValueLen); seenLen[nseen++] = a[2].ulValueLen;
        CK_ATTRIBUTE q[] = { { CKA_ID, id, a[2].ulValueLen } };
        find(q, 1, cs, 64);
    }
    printf("found %lu\n", (unsigned long)n);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: see the comment at the top of p11limit.c\n"); return 1; }
    open_token(argv[2], argv[3], argv[4]);
    double t0 = now();
    if (!strcmp(argv[1], "populate") && argc == 6) populate(atoi(argv[5]));
    else if (!strcmp(argv[1], "wrap") && argc == 7) wrap(argv[5], argv[6]);
    else if (!strcmp(argv[1], "unwrap") && argc == 7) unwrap(argv[5], argv[6], 0);
    else if (!strcmp(argv[1], "unwrappub") && argc == 7) unwrap(argv[5], argv[6], 1);
    else if (!strcmp(argv[1], "attrs")) attrs();
    else if (!strcmp(argv[1], "label") && argc == 6) label(argv[5], 0);
    else if (!strcmp(argv[1], "labelid") && argc == 6) label(argv[5], 1);
    else { fprintf(stderr, "bad arguments\n"); return 1; }
    printf("seconds %.4f\n", now() - t0);
    p->C_Logout(s);
    p->C_CloseSession(s);
    p->C_Finalize(NULL);
    return 0;
}
