/*
 * test_tls.c - the NBD server's TLS settings through the public API:
 * what spd_nbd_server_set_tls() refuses and why, nbds:// URIs, and the
 * listener URIs of a server that requires TLS. The TLS sessions themselves
 * are tested with real clients (tests/interop/nbd_tls.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "memunit.h"
#include "spd/nbd.h"

static char dir[] = "/tmp/spd-tls.XXXXXX";

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT(fd >= 0);
    EXPECT_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    EXPECT_EQ(fchmod(fd, mode), 0);
    close(fd);
}

static int set_tls(spd_nbd_server *s, spd_nbd_tls_mode mode,
                   const char *certificates, const char *psk, bool verify)
{
    char path[256];
    if (psk)
        snprintf(path, sizeof path, "%s/%s", dir, psk);
    spd_nbd_tls t = { SPD_NBD_TLS_INIT, .mode = mode,
                      .certificates = certificates,
                      .psk_file = psk ? path : NULL, .verify_peer = verify };
    return spd_nbd_server_set_tls(s, &t);
}

static void test_uri_schemes(void)
{
    char name[64];
    EXPECT_EQ(spd_nbd_uri_export_name("nbds://127.0.0.1:10809/disk", name,
                                      sizeof name), 0);
    EXPECT(!strcmp(name, "disk"));
    EXPECT_EQ(spd_nbd_uri_export_name("nbds+unix:///d2?socket=/tmp/s", name,
                                      sizeof name), 0);
    EXPECT(!strcmp(name, "d2"));
    EXPECT_EQ(spd_nbd_uri_export_name("nbd://h/x", name, sizeof name), 0);
    EXPECT(!strcmp(name, "x"));
    EXPECT_EQ(spd_nbd_uri_export_name("nbdss://h/", name, sizeof name),
              -EINVAL);
    EXPECT_EQ(spd_nbd_uri_export_name("nbds+tcp://h/", name, sizeof name),
              -EINVAL);
    EXPECT_EQ(spd_nbd_uri_export_name("nbds", name, sizeof name), -EINVAL);
}

static void test_refusals(void)
{
    spd_nbd_server *s = spd_nbd_server_create(NULL);
    spd_nbd_tls sizeless = { 0 };
    EXPECT_EQ(spd_nbd_server_set_tls(s, &sizeless), -EINVAL);
    EXPECT_EQ(spd_nbd_server_set_tls(s, NULL), -EINVAL);
    EXPECT_EQ(set_tls(s, (spd_nbd_tls_mode)7, NULL, "keys.psk", false),
              -EINVAL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, NULL, false), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "one of the two") != NULL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, dir, "keys.psk", false), -EINVAL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "keys.psk", true), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "certificates") != NULL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_REQUIRE, "/nonexistent", NULL, false),
              -ENOENT);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, dir, NULL, false), -ENOENT);
    EXPECT(strstr(spd_errmsg(), "server-cert.pem") != NULL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "open.psk", false), -EPERM);
    EXPECT(strstr(spd_errmsg(), "readable by others") != NULL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "group.psk", false), -EPERM);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "odd.psk", false), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "odd.psk:2") != NULL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "empty.psk", false), -EINVAL);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "none.psk", false), -ENOENT);
    /* Refused settings leave the server as it was: off. */
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_OFF, NULL, NULL, false), 0);
    spd_nbd_server_destroy(s);
}

static void test_listener_uris(void)
{
    spd_params p = memunit_params(512, 2048, 1);
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL);
    char sock[256], uri[512], want[300];
    snprintf(sock, sizeof sock, "nbds+unix:///?socket=%s/sock", dir);

    /* nbds:// listeners need TLS required. */
    spd_nbd_server *s = spd_nbd_server_create(NULL);
    EXPECT_EQ(spd_nbd_server_add(s, m->unit, "", NULL), 0);
    EXPECT_EQ(spd_nbd_server_listen(s, sock), 0);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_ON, NULL, "keys.psk", false), 0);
    EXPECT_EQ(spd_nbd_server_start(s), -EINVAL);
    EXPECT(strstr(spd_errmsg(), "TLS required") != NULL);
    spd_nbd_server_destroy(s);

    s = spd_nbd_server_create(NULL);
    EXPECT_EQ(spd_nbd_server_add(s, m->unit, "", NULL), 0);
    EXPECT_EQ(spd_nbd_server_listen(s, sock), 0);
    EXPECT_EQ(spd_nbd_server_listen(s, "nbd://127.0.0.1:0"), 0);
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_REQUIRE, NULL, "keys.psk", false), 0);
    EXPECT_EQ(spd_nbd_server_start(s), 0);
    EXPECT_EQ(spd_nbd_server_listener_uri(s, 0, uri, sizeof uri), 0);
    snprintf(want, sizeof want, "nbds+unix:///?socket=%s/sock", dir);
    EXPECT(!strcmp(uri, want));
    EXPECT_EQ(spd_nbd_server_listener_uri(s, 1, uri, sizeof uri), 0);
    EXPECT(!strncmp(uri, "nbds://127.0.0.1:", 17));
    EXPECT_EQ(spd_nbd_server_listener_uri(s, 1, uri, 10), -ENOSPC);
    EXPECT_EQ(spd_nbd_server_listener_uri(s, 1, uri, 1), -ENOSPC);
    EXPECT_EQ(spd_nbd_server_listener_uri(s, 2, uri, sizeof uri), -ENOENT);
    /* Not while serving: connections use the credentials. */
    EXPECT_EQ(set_tls(s, SPD_NBD_TLS_OFF, NULL, NULL, false), -EBUSY);
    spd_nbd_server_destroy(s);
    memunit_destroy(m);
}

int main(void)
{
    static const struct test_case tests[] = {
        TEST(test_uri_schemes), TEST(test_refusals), TEST(test_listener_uris),
    };
    if (!mkdtemp(dir))
        return 1;
    write_file("keys.psk", "# psktool\nalice:00112233445566778899aabbccddeeff\n",
               0600);
    write_file("open.psk", "alice:0011\n", 0644);
    write_file("group.psk", "alice:0011\n", 0620);
    write_file("odd.psk", "alice:0011\nbob:123\n", 0600);
    write_file("empty.psk", "\n# nothing\n", 0600);
    int r = RUN_TESTS("tls", tests);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
        /* Only a leftover temporary directory. */
    }
    return r;
}
