/* net.h - whole reads and writes on the blocking sockets of the exports. */
#ifndef SPD_NET_H
#define SPD_NET_H

#include <stddef.h>
#include <sys/uio.h>

/* Read or write exactly len bytes: 0, or -1 at EOF, on an error or when
 * a receive timeout expires. Writes never raise SIGPIPE. */
int net_read_full(int fd, void *buf, size_t len);
int net_write_full(int fd, const void *buf, size_t len);

/* Send all of iov[0..count) with as few sendmsg() calls as the socket
 * allows; iov is consumed. 0, or -1 when the peer is gone. */
int net_sendv_full(int fd, struct iovec *iov, int count);

#endif
