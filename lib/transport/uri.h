/* uri.h - NBD URIs (nbd://, nbd+unix://, and nbds://, nbds+unix:// for
 * TLS) as the NBD URI spec writes them. */
#ifndef SPD_URI_H
#define SPD_URI_H

#include <stdbool.h>
#include <sys/un.h>

struct nbd_uri {
    bool is_unix;
    bool tls;                                   /* nbds, nbds+unix */
    char host[256];                             /* TCP: address or name */
    char port[8];                               /* TCP: decimal */
    char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];  /* Unix */
    char name[4097];                            /* export name, decoded */
};

/* 0, or -EINVAL with spd_errmsg() saying what is wrong. */
int nbd_uri_parse(const char *text, struct nbd_uri *uri);

#endif
