/* secrets.c - see secrets.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "util/secrets.h"

static int secrets_check(int fd, const char *file)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return spd_set_error(errno, "%s: %s", file, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return spd_set_error(EINVAL, "%s: not a regular file", file);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return spd_set_error(EPERM, "%s is owned by user %u, neither this "
                             "user nor root: chown it first", file,
                             (unsigned)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return spd_set_error(EPERM, "%s is writable by %s: chmod go-w it "
                             "first", file, st.st_mode & S_IWOTH ? "others"
                                                                  : "its group");
    if (st.st_mode & S_IROTH)
        return spd_set_error(EPERM, "%s is readable by others: chmod o-r "
                             "it first", file);
    return 0;
}

int secrets_open(const char *file)
{
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP)
        return spd_set_error(ELOOP, "%s is a symbolic link: name the secrets "
                             "file itself", file);
    if (fd < 0)
        return spd_set_error(errno, "%s: %s", file, strerror(errno));
    int r = secrets_check(fd, file);
    if (r) {
        close(fd);
        return r;
    }
    return fd;
}
