/*
 * ublk_ctrl.c - control commands of the ublk driver: io_uring commands on
 * /dev/ublk-control, one at a time (see ublk_int.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/errmsg.h"
#include "transport/ublk_int.h"

struct ublk_ctrl {
    int fd;
    struct io_uring ring;
};

int ublk_ctrl_open(struct ublk_ctrl **out, uint64_t *features)
{
    struct ublk_ctrl *ctrl = calloc(1, sizeof *ctrl);
    if (!ctrl)
        return spd_set_error(ENOMEM, "out of memory");
    ctrl->fd = open(UBLK_CTRL_PATH, O_RDWR | O_CLOEXEC);
    if (ctrl->fd < 0) {
        int err = errno;
        free(ctrl);
        if (err == ENOENT || err == ENODEV || err == ENXIO)
            return spd_set_error(ENODEV, "no %s: this kernel has no ublk "
                                 "driver (modprobe ublk_drv; Linux 6.5 or "
                                 "later)", UBLK_CTRL_PATH);
        if (err == EACCES || err == EPERM)
            return spd_set_error(EPERM, "%s: not permitted: a ublk disk "
                                 "needs root, or the access a udev rule "
                                 "gives (spd_ublk(3), Unprivileged use)",
                                 UBLK_CTRL_PATH);
        return spd_set_error(err, "%s: %s", UBLK_CTRL_PATH, strerror(err));
    }
    int r = io_uring_queue_init(4, &ctrl->ring, IORING_SETUP_SQE128);
    if (r) {
        close(ctrl->fd);
        free(ctrl);
        return spd_set_error(-r, "io_uring for %s: %s", UBLK_CTRL_PATH,
                             strerror(-r));
    }
    uint64_t f = 0;
    r = ublk_ctrl_cmd(ctrl, UBLK_U_CMD_GET_FEATURES, 0, false, &f, sizeof f,
                      0);
    if (r < 0 || !(f & UBLK_F_CMD_IOCTL_ENCODE)) {
        ublk_ctrl_close(ctrl);
        return spd_set_error(EOPNOTSUPP, "this kernel's ublk driver is too "
                             "old: Spd needs Linux 6.5 or later");
    }
    if (features)
        *features = f;
    *out = ctrl;
    return 0;
}

void ublk_ctrl_close(struct ublk_ctrl *ctrl)
{
    if (!ctrl)
        return;
    io_uring_queue_exit(&ctrl->ring);
    close(ctrl->fd);
    free(ctrl);
}

int ublk_ctrl_cmd(struct ublk_ctrl *ctrl, uint32_t op, uint32_t id,
                  bool unprivileged, void *buf, uint16_t len, uint64_t data)
{
    char path[32], *payload = buf;
    size_t path_len = 0;
    if (unprivileged) {
        /* The kernel checks the caller's access to /dev/ublkcID, named at
         * the start of the buffer, and skips it. */
        path_len = (size_t)snprintf(path, sizeof path, "/dev/ublkc%u", id);
        payload = malloc(path_len + len);
        if (!payload)
            return -ENOMEM;
        memcpy(payload, path, path_len);
        if (len)
            memcpy(payload + path_len, buf, len);
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ctrl->ring);
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, ctrl->fd, NULL, 0, 0);
    sqe->cmd_op = op;
    struct ublk_ctrl_cmd *cmd = (struct ublk_ctrl_cmd *)sqe->cmd;
    *cmd = (struct ublk_ctrl_cmd){
        .dev_id = id, .queue_id = UINT16_MAX,
        .len = (uint16_t)(path_len + len),
        .addr = (uint64_t)(uintptr_t)(path_len || len ? payload : NULL),
        .data = data, .dev_path_len = (uint16_t)path_len,
    };
    struct io_uring_cqe *cqe;
    int r = io_uring_submit(&ctrl->ring);
    if (r >= 0)
        do
            r = io_uring_wait_cqe(&ctrl->ring, &cqe);
        while (r == -EINTR);
    if (r >= 0) {
        r = cqe->res;
        io_uring_cqe_seen(&ctrl->ring, cqe);
    }
    if (unprivileged) {
        if (len)
            memcpy(buf, payload + path_len, len);
        free(payload);
    }
    return r;
}
