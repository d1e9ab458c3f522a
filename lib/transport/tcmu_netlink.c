/*
 * tcmu_netlink.c - the kernel's TCMU events (see tcmu_int.h): the generic
 * netlink family TCM-USER, whose multicast group "config" announces each
 * device added, removed or reconfigured (a dev_size, dev_config or write
 * cache attribute written while enabled). Raw netlink sockets: one
 * request to the controller resolves the family and its group, then the
 * group's messages are read as they come. No *_DONE reply is ever sent:
 * the kernel waits for none about Spd's backstores (nl_reply_supported
 * is -1), and the others are their own daemon's to answer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/uio.h>
#define __LINUX_UIO_H   /* glibc's struct iovec is there already */
#include <linux/target_core_user.h>

#include "util/errmsg.h"
#include "transport/tcmu_int.h"

#define NL_BUF 8192

/* A message under construction or received: header, genl header and
 * attributes in one aligned buffer. */
struct nl_msg {
    union {
        struct nlmsghdr h;
        uint8_t b[512];
    } u;
};

static void msg_init(struct nl_msg *m, uint16_t type, uint16_t flags,
                     uint8_t cmd, uint8_t version)
{
    memset(m, 0, sizeof *m);
    m->u.h.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
    m->u.h.nlmsg_type = type;
    m->u.h.nlmsg_flags = NLM_F_REQUEST | flags;
    struct genlmsghdr *g = NLMSG_DATA(&m->u.h);
    g->cmd = cmd;
    g->version = version;
}

static void msg_attr(struct nl_msg *m, uint16_t type, const void *data,
                     uint16_t len)
{
    struct nlattr *a = (struct nlattr *)(void *)
                       (m->u.b + NLMSG_ALIGN(m->u.h.nlmsg_len));
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
    m->u.h.nlmsg_len = NLMSG_ALIGN(m->u.h.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static int msg_send(int fd, const struct nl_msg *m)
{
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, m->u.b, m->u.h.nlmsg_len, 0, (struct sockaddr *)&kernel,
               sizeof kernel) < 0)
        return -errno;
    return 0;
}

/* Walk the attributes in [p, p + len): each one's type, payload and
 * payload length through fn; stops when fn returns nonzero. */
typedef int (*attr_fn)(void *arg, uint16_t type, const uint8_t *data,
                       size_t len);

static int attrs_walk(const uint8_t *p, size_t len, attr_fn fn, void *arg)
{
    while (len >= NLA_HDRLEN) {
        const struct nlattr *a = (const struct nlattr *)(const void *)p;
        if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
            return -EBADMSG;
        int r = fn(arg, a->nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN,
                   a->nla_len - NLA_HDRLEN);
        if (r)
            return r;
        size_t step = NLA_ALIGN(a->nla_len);
        if (step >= len)
            break;
        p += step;
        len -= step;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The family and its group, from the controller                       */
/* ------------------------------------------------------------------ */

struct family {
    int id;             /* -1 until found */
    int group;          /* of "config" */
    int in_group;       /* parsing a group: its id, or -1 */
    bool in_config;
};

static int group_attr(void *arg, uint16_t type, const uint8_t *d, size_t len)
{
    struct family *f = arg;
    if (type == CTRL_ATTR_MCAST_GRP_ID && len >= 4)
        memcpy(&f->in_group, d, 4);
    if (type == CTRL_ATTR_MCAST_GRP_NAME)
        f->in_config = len >= 7 && !memcmp(d, "config", 7);
    return 0;
}

static int groups_attr(void *arg, uint16_t type, const uint8_t *d,
                       size_t len)
{
    struct family *f = arg;
    (void)type;
    f->in_group = -1;
    f->in_config = false;
    attrs_walk(d, len, group_attr, f);
    if (f->in_config && f->in_group >= 0)
        f->group = f->in_group;
    return 0;
}

static int family_attr(void *arg, uint16_t type, const uint8_t *d,
                       size_t len)
{
    struct family *f = arg;
    if (type == CTRL_ATTR_FAMILY_ID && len >= 2) {
        uint16_t id;
        memcpy(&id, d, 2);
        f->id = id;
    }
    if (type == CTRL_ATTR_MCAST_GROUPS)
        attrs_walk(d, len, groups_attr, f);
    return 0;
}

/* Ask the controller for TCM-USER's id and its "config" group. */
static int family_resolve(int fd, struct family *f)
{
    struct nl_msg m;
    msg_init(&m, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, 1);
    msg_attr(&m, CTRL_ATTR_FAMILY_NAME, "TCM-USER", 9);
    int r = msg_send(fd, &m);
    if (r)
        return r;
    static _Thread_local uint8_t buf[NL_BUF];
    for (int tries = 0; tries < 4; tries++) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0)
            return -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
             NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error ? e->error : -ENOENT;
            }
            if (h->nlmsg_type != GENL_ID_CTRL ||
                h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
                continue;
            const uint8_t *p = (const uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN;
            attrs_walk(p, h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                       family_attr, f);
            return f->id >= 0 && f->group >= 0 ? 0 : -ENOENT;
        }
    }
    return -ENOENT;
}

int tcmu_nl_open(struct tcmu_nl *nl)
{
    nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
    if (nl->fd < 0)
        return spd_set_error(errno, "TCMU netlink socket: %s",
                             strerror(errno));
    struct sockaddr_nl self = { .nl_family = AF_NETLINK };
    struct timeval tv = { .tv_sec = 2 };
    struct family f = { .id = -1, .group = -1 };
    int r = 0;
    if (bind(nl->fd, (struct sockaddr *)&self, sizeof self) ||
        setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv))
        r = -errno;
    if (!r)
        r = family_resolve(nl->fd, &f);
    if (!r && setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
                         &f.group, sizeof f.group))
        r = -errno;
    if (r) {
        close(nl->fd);
        nl->fd = -1;
        return spd_set_error(-r, "TCMU netlink family TCM-USER, group "
                             "config: %s", strerror(-r));
    }
    nl->family = (uint16_t)f.id;
    return 0;
}

void tcmu_nl_close(struct tcmu_nl *nl)
{
    if (nl->fd >= 0)
        close(nl->fd);
    nl->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

static int event_attr(void *arg, uint16_t type, const uint8_t *d, size_t len)
{
    struct tcmu_nl_event *ev = arg;
    switch (type) {
    case TCMU_ATTR_MINOR:
        if (len >= 4)
            memcpy(&ev->minor, d, 4);
        break;
    case TCMU_ATTR_DEV_SIZE:
        if (len >= 8) {
            memcpy(&ev->dev_size, d, 8);
            ev->what = TCMU_NL_SIZE;
        }
        break;
    case TCMU_ATTR_DEV_CFG:
        /* As written: "echo" leaves its newline in. */
        while (len && (d[len - 1] == '\0' || d[len - 1] == '\n'))
            len--;
        snprintf(ev->config, sizeof ev->config, "%.*s", (int)len,
                 (const char *)d);
        ev->what = TCMU_NL_CONFIG;
        break;
    case TCMU_ATTR_WRITECACHE:
        ev->what = TCMU_NL_WRITE_CACHE;
        break;
    }
    return 0;
}

int tcmu_nl_read(struct tcmu_nl *nl, tcmu_nl_handler fn, void *arg)
{
    static _Thread_local uint8_t buf[NL_BUF];
    struct sockaddr_nl from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(nl->fd, buf, sizeof buf, MSG_DONTWAIT,
                         (struct sockaddr *)&from, &fl);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
               ? 0 : -errno;
    if (from.nl_pid != 0)      /* only the kernel speaks for devices */
        return 1;
    for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
         NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != nl->family ||
            h->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
            continue;   /* an ack of a reply, or not TCMU's */
        const struct genlmsghdr *g = NLMSG_DATA(h);
        struct tcmu_nl_event ev = { .cmd = g->cmd, .minor = -1 };
        const uint8_t *p = (const uint8_t *)g + GENL_HDRLEN;
        if (attrs_walk(p, h->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN),
                       event_attr, &ev) == 0 &&
            (ev.cmd == TCMU_CMD_ADDED_DEVICE ||
             ev.cmd == TCMU_CMD_REMOVED_DEVICE ||
             ev.cmd == TCMU_CMD_RECONFIG_DEVICE))
            fn(arg, &ev);
    }
    return 1;
}
