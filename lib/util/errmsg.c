/* errmsg.c - per-thread error messages (see spd_errmsg() in spd.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/errmsg.h"
#include "spd/spd.h"

static _Thread_local char last_error[256];

int spd_set_error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    errno = err;
    return -err;
}

const char *spd_errmsg(void)
{
    return last_error[0] ? last_error : "no error";
}
