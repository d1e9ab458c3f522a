/* net.h - whole reads and writes on the blocking sockets of the exports
 * (handshakes, and the rest of a message whose start was buffered). */
#ifndef SPD_NET_H
#define SPD_NET_H

#include <stddef.h>

/* Read or write exactly len bytes: 0, or -1 at EOF, on an error or when
 * a receive timeout expires. Writes never raise SIGPIPE. */
int net_read_full(int fd, void *buf, size_t len);
int net_write_full(int fd, const void *buf, size_t len);

#endif
