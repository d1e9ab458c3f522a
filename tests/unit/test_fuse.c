/*
 * test_fuse.c - the FUSE export: a memunit exported as a file at a
 * temporary path, driven with ordinary system calls (stat, pread, pwrite,
 * fsync, fallocate, ftruncate) and checked byte for byte against the
 * device's memory and counters; then stop, and the mount must be gone.
 * Skips (77) without /dev/fuse or permission to mount (FUSE mounts need
 * root or fusermount3).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "memunit.h"
#include "spd/fuse.h"

#define BLOCKS 1024

/* An export of unit at path, started: NULL with errno when not. */
static spd_fuse_export *start_export(spd_unit *unit, const char *path)
{
    spd_fuse_export *e = spd_fuse_export_create();
    int r = e ? spd_fuse_export_add(e, unit, path) : -errno;
    if (!r)
        r = spd_fuse_export_start(e);
    if (r) {
        spd_fuse_export_destroy(e);
        errno = -r;
        return NULL;
    }
    return e;
}

struct fixture {
    struct memunit *m;
    spd_fuse_export *e;
    char dir[64];
    char path[96];
};

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 29 + seed * 13 + (i >> 10));
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/* Is path a mountpoint of this process (field 5 of mountinfo)? */
static bool is_mountpoint(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], point[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 &&
                !strcmp(point, path);
    if (f)
        fclose(f);
    return found;
}

/* A memunit exported at DIR/disk (threads: dispatcher threads, 0 none). */
static bool fixture_up(struct fixture *f, const spd_params *p,
                       unsigned threads)
{
    memset(f, 0, sizeof *f);
    strcpy(f->dir, "/tmp/spd-fuse.XXXXXX");
    if (!EXPECT(mkdtemp(f->dir) != NULL))
        return false;
    snprintf(f->path, sizeof f->path, "%s/disk", f->dir);
    f->m = memunit_create(p, SPD_OPS_PARALLEL);
    if (!EXPECT(f->m != NULL))
        return false;
    if (threads)
        EXPECT_EQ(spd_unit_start(f->m->unit, threads), 0);
    f->e = start_export(f->m->unit, f->path);
    if (!f->e)
        fprintf(stderr, "start: %s\n", spd_errmsg());
    return EXPECT(f->e != NULL);
}

static void fixture_down(struct fixture *f)
{
    spd_fuse_export_destroy(f->e);
    if (f->e) {
        EXPECT(!is_mountpoint(f->path));
        EXPECT(access(f->path, F_OK) != 0);    /* start created it */
    }
    if (f->m)
        memunit_destroy(f->m);
    rmdir(f->dir);
}

/* ------------------------------------------------------------------ */

static void check_stat(struct fixture *f, uint32_t bl, mode_t mode)
{
    struct stat st;
    if (!EXPECT(stat(f->path, &st) == 0))
        return;
    EXPECT(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, mode);
    EXPECT_EQ(st.st_size, (uint64_t)BLOCKS * bl);
    EXPECT_EQ(st.st_blksize, bl);
    EXPECT(is_mountpoint(f->path));
}

/* pwrite at off, then compare the device's memory and a pread; the
 * bytes just outside the range must not change. */
static void write_read_at(struct fixture *f, int fd, uint64_t off, size_t len,
                          unsigned seed)
{
    size_t size = (size_t)BLOCKS * f->m->params.block_length;
    uint8_t *out = malloc(len), *in = malloc(len);
    uint8_t below = off ? f->m->data[off - 1] : 0;
    uint8_t above = off + len < size ? f->m->data[off + len] : 0;
    fill(out, len, seed);
    EXPECT_EQ(pwrite(fd, out, len, (off_t)off), len);
    EXPECT(!memcmp(f->m->data + off, out, len));
    if (off)
        EXPECT_EQ(f->m->data[off - 1], below);
    if (off + len < size)
        EXPECT_EQ(f->m->data[off + len], above);
    memset(in, 0, len);
    EXPECT_EQ(pread(fd, in, len, (off_t)off), len);
    EXPECT(!memcmp(in, out, len));
    free(out);
    free(in);
}

/* Aligned and unaligned writes over the device's contents. */
static void check_io(struct fixture *f, uint32_t bl)
{
    size_t size = (size_t)BLOCKS * bl;
    fill(f->m->data, size, 99);
    uint8_t *before = malloc(size);
    memcpy(before, f->m->data, size);
    int fd = open(f->path, O_RDWR);
    if (!EXPECT(fd >= 0))
        goto out;
    uint8_t *in = malloc(size);
    EXPECT_EQ(pread(fd, in, size, 0), size);    /* the device's contents */
    EXPECT(!memcmp(in, before, size));
    free(in);

    write_read_at(f, fd, 0, bl, 1);
    write_read_at(f, fd, 8 * (uint64_t)bl, 16 * (size_t)bl, 2);
    write_read_at(f, fd, 1, 100, 3);
    write_read_at(f, fd, 511, 2, 4);
    write_read_at(f, fd, 4095, 4098, 5);              /* spans blocks */
    write_read_at(f, fd, 30 * (uint64_t)bl + 7, 3 * (size_t)bl, 6);
    write_read_at(f, fd, size - 3, 3, 7);             /* the last bytes */
    /* Far from what was written, the device's memory is unchanged. */
    EXPECT(!memcmp(f->m->data + 40 * (size_t)bl, before + 40 * (size_t)bl,
                   size - 41 * (size_t)bl));
    close(fd);
out:
    free(before);
}

/* Unaligned reads straight to the server (O_DIRECT skips the page cache,
 * and FUSE direct I/O needs no alignment). */
static void check_direct_reads(struct fixture *f, uint32_t bl)
{
    size_t size = (size_t)BLOCKS * bl;
    fill(f->m->data, size, 42);
    int fd = open(f->path, O_RDONLY | O_DIRECT);
    if (!EXPECT(fd >= 0))
        return;
    uint8_t buf[9000];
    uint64_t offs[] = { 1, 511, 4095, bl - 1, 3 * (uint64_t)bl + 17 };
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memset(buf, 0, sizeof buf);
        EXPECT_EQ(pread(fd, buf, sizeof buf, (off_t)offs[i]), sizeof buf);
        EXPECT(!memcmp(buf, f->m->data + offs[i], sizeof buf));
    }
    /* Across the end: short; at the end: 0. */
    EXPECT_EQ(pread(fd, buf, 1000, (off_t)(size - 10)), 10);
    EXPECT(!memcmp(buf, f->m->data + size - 10, 10));
    EXPECT_EQ(pread(fd, buf, 1000, (off_t)size), 0);
    close(fd);
}

static void check_bounds(struct fixture *f, uint32_t bl)
{
    size_t size = (size_t)BLOCKS * bl;
    int fd = open(f->path, O_RDWR);
    if (!EXPECT(fd >= 0))
        return;
    uint8_t buf[4096] = { 1 };
    errno = 0;
    EXPECT_EQ(pwrite(fd, buf, bl, (off_t)size), -1);
    EXPECT(errno == ENOSPC || errno == EFBIG);
    EXPECT_EQ(pwrite(fd, buf, 100, (off_t)size - 40), 40);   /* short */
    EXPECT_EQ(pread(fd, buf, sizeof buf, (off_t)size), 0);
    /* The size is fixed: truncating to it is fine, to anything else not. */
    EXPECT_EQ(ftruncate(fd, (off_t)size), 0);
    errno = 0;
    EXPECT_EQ(ftruncate(fd, (off_t)size / 2), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(ftruncate(fd, (off_t)size * 2), -1);
    EXPECT_EQ(errno, EINVAL);
    close(fd);
    /* O_TRUNC is ignored, as for a block device. */
    fd = open(f->path, O_WRONLY | O_TRUNC);
    EXPECT(fd >= 0);
    if (fd >= 0)
        close(fd);
    struct stat st;
    EXPECT(stat(f->path, &st) == 0 && (uint64_t)st.st_size == size);
}

static void check_fsync(struct fixture *f)
{
    int fd = open(f->path, O_RDWR);
    if (!EXPECT(fd >= 0))
        return;
    uint8_t buf[512] = { 7 };
    EXPECT_EQ(pwrite(fd, buf, sizeof buf, 0), sizeof buf);
    unsigned before = atomic_load(&f->m->flushes);
    EXPECT_EQ(fsync(fd), 0);
    EXPECT_EQ(atomic_load(&f->m->flushes), before + 1);
    EXPECT_EQ(fdatasync(fd), 0);
    EXPECT_EQ(atomic_load(&f->m->flushes), before + 2);
    close(fd);                       /* close flushes a writable file too */
    EXPECT_EQ(atomic_load(&f->m->flushes), before + 3);
    fd = open(f->path, O_RDONLY);    /* ... but not a read-only one */
    close(fd);
    EXPECT_EQ(atomic_load(&f->m->flushes), before + 3);
}

/* fallocate modes; the unit's unmapped blocks read as zeros. */
static void check_fallocate(struct fixture *f, uint32_t bl)
{
    size_t size = (size_t)BLOCKS * bl;
    fill(f->m->data, size, 5);
    int fd = open(f->path, O_RDWR);
    if (!EXPECT(fd >= 0))
        return;
    uint8_t *before = malloc(size);
    memcpy(before, f->m->data, size);

    /* Whole blocks 4..11: unmapped, nothing else touched. */
    unsigned unmaps = atomic_load(&f->m->unmaps);
    EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        4 * (off_t)bl, 8 * (off_t)bl), 0);
    EXPECT(all_zero(f->m->data + 4 * bl, 8 * (size_t)bl));
    EXPECT_EQ(atomic_load(&f->m->unmaps), unmaps + 1);
    EXPECT(!memcmp(f->m->data, before, 4 * (size_t)bl));
    EXPECT(!memcmp(f->m->data + 12 * bl, before + 12 * bl, size - 12 * bl));

    /* Partial edges: [20 bl + 100, 30 bl + 7) zeroed exactly. */
    uint64_t off = 20 * (uint64_t)bl + 100, end = 30 * (uint64_t)bl + 7;
    EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)off, (off_t)(end - off)), 0);
    EXPECT(all_zero(f->m->data + off, end - off));
    EXPECT_EQ(f->m->data[off - 1], before[off - 1]);
    EXPECT_EQ(f->m->data[end], before[end]);
    EXPECT_EQ(atomic_load(&f->m->unmaps), unmaps + 2);

    /* ZERO_RANGE inside one block, and across several. */
    off = 40 * (uint64_t)bl + 3;
    EXPECT_EQ(fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)off, 5), 0);
    EXPECT(all_zero(f->m->data + off, 5));
    EXPECT_EQ(f->m->data[off - 1], before[off - 1]);
    EXPECT_EQ(f->m->data[off + 5], before[off + 5]);
    EXPECT_EQ(fallocate(fd, FALLOC_FL_ZERO_RANGE, 50 * (off_t)bl,
                        10 * (off_t)bl), 0);
    EXPECT(all_zero(f->m->data + 50 * bl, 10 * (size_t)bl));

    /* Reading through the file shows the zeros (the page cache dropped
     * the punched range). */
    uint8_t *in = malloc(size);
    EXPECT_EQ(pread(fd, in, size, 0), size);
    EXPECT(!memcmp(in, f->m->data, size));
    free(in);

    /* Preallocation inside the size is a no-op; growing and other modes
     * are refused. */
    EXPECT_EQ(fallocate(fd, 0, 0, (off_t)size), 0);
    EXPECT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 2 * (off_t)size), 0);
    errno = 0;
    EXPECT_EQ(fallocate(fd, 0, 0, 2 * (off_t)size), -1);
    EXPECT(errno == ENOSPC || errno == EFBIG);
    errno = 0;
    EXPECT_EQ(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)bl), -1);
    EXPECT_EQ(errno, EOPNOTSUPP);
    /* Past the end with KEEP_SIZE: only the part inside is zeroed. */
    EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)size - bl, 4 * (off_t)bl), 0);
    EXPECT(all_zero(f->m->data + size - bl, bl));
    free(before);
    close(fd);
}

static void exercise(uint32_t bl, unsigned threads, bool async)
{
    struct fixture f;
    spd_params p = memunit_params(bl, BLOCKS, (uint8_t)(bl / 512 + threads));
    if (fixture_up(&f, &p, threads)) {
        f.m->async = async;
        check_stat(&f, bl, 0600);
        check_io(&f, bl);
        check_direct_reads(&f, bl);
        check_bounds(&f, bl);
        check_fsync(&f);
        check_fallocate(&f, bl);
    }
    fixture_down(&f);
}

static void test_512(void) { exercise(512, 0, false); }
static void test_4096(void) { exercise(4096, 0, false); }
/* Dispatcher threads and completions from memunit's own thread. */
static void test_4096_async(void) { exercise(4096, 2, true); }

static void test_write_protected(void)
{
    struct fixture f;
    spd_params p = memunit_params(512, BLOCKS, 21);
    p.write_protected = true;
    if (fixture_up(&f, &p, 0)) {
        check_stat(&f, 512, 0400);
        fill(f.m->data, 4096, 3);
        int fd = open(f.path, O_RDWR);       /* opening for write is fine */
        EXPECT(fd >= 0);
        uint8_t buf[4096];
        errno = 0;
        EXPECT_EQ(pwrite(fd, buf, 512, 0), -1);
        EXPECT(errno == EROFS || errno == EPERM);
        errno = 0;
        EXPECT_EQ(pwrite(fd, buf, 10, 3), -1);           /* unaligned too */
        EXPECT(errno == EROFS || errno == EPERM);
        errno = 0;
        EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            0, 4096), -1);
        EXPECT(errno == EROFS || errno == EPERM);
        EXPECT_EQ(pread(fd, buf, sizeof buf, 0), sizeof buf);
        EXPECT(!memcmp(buf, f.m->data, sizeof buf));
        EXPECT_EQ(atomic_load(&f.m->writes), 0);
        close(fd);
    }
    fixture_down(&f);
}

/* Without unmap that reads zeros: ZERO_RANGE writes zeros, PUNCH_HOLE is
 * refused (a hole must read as zeros). */
static void test_no_unmap(void)
{
    struct fixture f;
    spd_params p = memunit_params(4096, BLOCKS, 22);
    p.unmap_supported = p.unmap_reads_zero = false;
    if (fixture_up(&f, &p, 0)) {
        fill(f.m->data, (size_t)BLOCKS * 4096, 8);
        int fd = open(f.path, O_RDWR);
        EXPECT(fd >= 0);
        EXPECT_EQ(fallocate(fd, FALLOC_FL_ZERO_RANGE, 4096, 3 * 4096 + 5), 0);
        EXPECT(all_zero(f.m->data + 4096, 3 * 4096 + 5));
        EXPECT(f.m->data[4 * 4096 + 5] != 0 || f.m->data[4 * 4096 + 6] != 0);
        EXPECT_EQ(atomic_load(&f.m->unmaps), 0);
        errno = 0;
        EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            0, 4096), -1);
        EXPECT_EQ(errno, EOPNOTSUPP);
        close(fd);
    }
    fixture_down(&f);
}

/* An existing file is mounted over, left alone, and kept after stop. */
static void test_existing_file(void)
{
    char dir[] = "/tmp/spd-fuse.XXXXXX", path[64];
    if (!EXPECT(mkdtemp(dir) != NULL))
        return;
    snprintf(path, sizeof path, "%s/image", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    EXPECT_EQ(write(fd, "hidden", 6), 6);
    close(fd);
    spd_params p = memunit_params(512, BLOCKS, 23);
    struct memunit *m = memunit_create(&p, SPD_OPS_PARALLEL);
    spd_fuse_export *e = start_export(m->unit, path);
    if (EXPECT(e != NULL)) {
        struct stat st;
        EXPECT(stat(path, &st) == 0 && st.st_size == BLOCKS * 512);
        spd_fuse_export_destroy(e);
    }
    char buf[16] = "";
    fd = open(path, O_RDONLY);
    EXPECT_EQ(read(fd, buf, sizeof buf), 6);
    EXPECT(!memcmp(buf, "hidden", 6));
    close(fd);
    unlink(path);
    rmdir(dir);
    memunit_destroy(m);
}

static void test_bad_paths(void)
{
    spd_params p = memunit_params(512, BLOCKS, 24);
    struct memunit *m = memunit_create(&p, 0);
    errno = 0;
    EXPECT(start_export(m->unit, "/tmp") == NULL);
    EXPECT_EQ(errno, EISDIR);
    errno = 0;
    EXPECT(start_export(m->unit, "/nonexistent-dir/disk") == NULL);
    EXPECT_EQ(errno, ENOENT);
    errno = 0;
    EXPECT(start_export(m->unit, "/dev/null") == NULL);
    EXPECT_EQ(errno, EINVAL);
    EXPECT(start_export(m->unit, "") == NULL);
    memunit_destroy(m);
}

/* Stop with the file still open: it must return, unmount, and the open
 * descriptor then fails instead of hanging. */
static void test_stop_while_open(void)
{
    struct fixture f;
    spd_params p = memunit_params(512, BLOCKS, 25);
    if (fixture_up(&f, &p, 0)) {
        int fd = open(f.path, O_RDWR);
        EXPECT(fd >= 0);
        uint8_t buf[512];
        EXPECT_EQ(pread(fd, buf, sizeof buf, 0), sizeof buf);
        spd_fuse_export_destroy(f.e);
        EXPECT(!is_mountpoint(f.path));
        errno = 0;
        EXPECT_EQ(pwrite(fd, buf, sizeof buf, 0), -1);
        EXPECT(errno == ENOTCONN || errno == ECONNABORTED || errno == ENODEV);
        close(fd);
        f.e = NULL;
        unlink(f.path);
    }
    fixture_down(&f);
}

/* One export, two paths: both mounted by start, both gone after stop; a
 * path twice and an add after start are refused. */
static void test_two_paths(void)
{
    char dir[] = "/tmp/spd-fuse.XXXXXX", a[64], b[64];
    if (!EXPECT(mkdtemp(dir) != NULL))
        return;
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    spd_params p1 = memunit_params(512, BLOCKS, 27);
    spd_params p2 = memunit_params(4096, BLOCKS, 28);
    struct memunit *m1 = memunit_create(&p1, SPD_OPS_PARALLEL);
    struct memunit *m2 = memunit_create(&p2, SPD_OPS_PARALLEL);
    spd_fuse_export *e = spd_fuse_export_create();
    EXPECT_EQ(spd_fuse_export_add(e, m1->unit, a), 0);
    EXPECT_EQ(spd_fuse_export_add(e, m2->unit, b), 0);
    EXPECT_EQ(spd_fuse_export_add(e, m2->unit, b), -EEXIST);
    if (EXPECT_EQ(spd_fuse_export_start(e), 0)) {
        struct stat st;
        EXPECT(stat(a, &st) == 0 && st.st_size == BLOCKS * 512);
        EXPECT(stat(b, &st) == 0 && st.st_size == BLOCKS * 4096);
        EXPECT(is_mountpoint(a) && is_mountpoint(b));
        EXPECT_EQ(spd_fuse_export_add(e, m1->unit, "/tmp/x"), -EBUSY);
        spd_fuse_export_stop(e);
        EXPECT(!is_mountpoint(a) && !is_mountpoint(b));
        EXPECT(access(a, F_OK) != 0 && access(b, F_OK) != 0);
    }
    spd_fuse_export_destroy(e);
    rmdir(dir);
    memunit_destroy(m1);
    memunit_destroy(m2);
}

static const struct test_case tests[] = {
    TEST(test_512),
    TEST(test_4096),
    TEST(test_4096_async),
    TEST(test_write_protected),
    TEST(test_no_unmap),
    TEST(test_existing_file),
    TEST(test_bad_paths),
    TEST(test_stop_while_open),
    TEST(test_two_paths),
};

/* Why FUSE cannot be mounted here (NULL: it can); reason holds it. */
static const char *cannot_mount(char *reason, size_t cap)
{
    if (access("/dev/fuse", F_OK) != 0)
        return "no /dev/fuse";
    char dir[] = "/tmp/spd-fuse.XXXXXX", path[64];
    if (!mkdtemp(dir))
        return NULL;            /* the tests will say what is wrong */
    snprintf(path, sizeof path, "%s/probe", dir);
    spd_params p = memunit_params(512, 8, 26);
    struct memunit *m = memunit_create(&p, 0);
    spd_fuse_export *e = start_export(m->unit, path);
    int err = errno;
    const char *why = NULL;
    if (!e && (err == EPERM || err == EACCES || err == ENODEV)) {
        snprintf(reason, cap, "cannot mount FUSE: %s", spd_errmsg());
        why = reason;
    }
    spd_fuse_export_destroy(e);
    memunit_destroy(m);
    rmdir(dir);
    return why;
}

int main(void)
{
    char reason[256];
    const char *why = cannot_mount(reason, sizeof reason);
    if (why)
        return SKIP_TESTS("fuse", tests, why);
    return RUN_TESTS("fuse", tests);
}
