/* secrets.h - the one policy for files holding secrets (CHAP secrets,
 * TLS pre-shared keys). */
#ifndef SPD_SECRETS_H
#define SPD_SECRETS_H

/* Open file for reading if only the serving user (or root) can change it
 * and nobody else can read it: a regular file, not a symbolic link, owned
 * by us or root, not writable by group or others, not readable by others.
 * The descriptor, or -errno with spd_errmsg() saying which rule it breaks. */
int secrets_open(const char *file)
    __attribute__((visibility("hidden")));

#endif
