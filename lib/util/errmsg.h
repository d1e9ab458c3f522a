/* errmsg.h - the thread's last error message, behind spd_errmsg(). */
#ifndef SPD_ERRMSG_H
#define SPD_ERRMSG_H

/* Set the calling thread's message (printf format) and errno to err;
 * returns -err so callers can write: return spd_set_error(EINVAL, ...). */
int spd_set_error(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), visibility("hidden")));

#endif
