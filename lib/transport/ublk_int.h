/*
 * ublk_int.h - what the ublk export's two files share: the kernel's
 * interface beyond the installed header, and the control commands
 * (ublk_ctrl.c) that ublk.c's export drives.
 */
#ifndef SPD_UBLK_INT_H
#define SPD_UBLK_INT_H

#include <linux/ublk_cmd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>

/*
 * Spd is built against the installed UAPI header (Debian 12: Linux 6.1)
 * but runs on newer kernels, and it uses what 6.1 lacks: the
 * ioctl-encoded command numbers (a kernel may refuse the plain ones), the
 * unprivileged mode, GET_DEV_INFO2 and GET_FEATURES. They are defined here
 * as the kernel's own header defines them, and nowhere else.
 */
#ifndef UBLK_U_CMD_ADD_DEV
#define UBLK_U_CMD_GET_DEV_INFO  _IOR('u', UBLK_CMD_GET_DEV_INFO, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_ADD_DEV       _IOWR('u', UBLK_CMD_ADD_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_DEL_DEV       _IOWR('u', UBLK_CMD_DEL_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_DEV     _IOWR('u', UBLK_CMD_START_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_STOP_DEV      _IOWR('u', UBLK_CMD_STOP_DEV, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_SET_PARAMS    _IOWR('u', UBLK_CMD_SET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_GET_PARAMS    _IOR('u', UBLK_CMD_GET_PARAMS, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_START_USER_RECOVERY \
    _IOWR('u', UBLK_CMD_START_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_CMD_END_USER_RECOVERY \
    _IOWR('u', UBLK_CMD_END_USER_RECOVERY, struct ublksrv_ctrl_cmd)
#define UBLK_U_IO_FETCH_REQ      _IOWR('u', UBLK_IO_FETCH_REQ, struct ublksrv_io_cmd)
#define UBLK_U_IO_COMMIT_AND_FETCH_REQ \
    _IOWR('u', UBLK_IO_COMMIT_AND_FETCH_REQ, struct ublksrv_io_cmd)
#endif
#ifndef UBLK_CMD_GET_DEV_INFO2
#define UBLK_CMD_GET_DEV_INFO2   0x12
#define UBLK_U_CMD_GET_DEV_INFO2 _IOR('u', UBLK_CMD_GET_DEV_INFO2, struct ublksrv_ctrl_cmd)
#endif
#ifndef UBLK_U_CMD_GET_FEATURES
#define UBLK_U_CMD_GET_FEATURES  _IOR('u', 0x13, struct ublksrv_ctrl_cmd)
#endif
#ifndef UBLK_F_UNPRIVILEGED_DEV
#define UBLK_F_UNPRIVILEGED_DEV  (1ULL << 5)
#endif
#ifndef UBLK_F_CMD_IOCTL_ENCODE
#define UBLK_F_CMD_IOCTL_ENCODE  (1ULL << 6)
#endif

/* Linux 6.5: the process copies request data itself, with pread() and
 * pwrite() on /dev/ublkcN at ublk_pos() (UBLK_F_USER_COPY). */
#ifndef UBLK_F_USER_COPY
#define UBLK_F_USER_COPY         (1ULL << 7)
#endif
#ifndef UBLK_QID_OFF
#define UBLK_TAG_OFF             25
#define UBLK_QID_OFF             41
#endif
static inline uint64_t ublk_pos(uint16_t q_id, uint16_t tag, uint64_t offset)
{
    return UBLKSRV_IO_BUF_OFFSET + ((uint64_t)q_id << UBLK_QID_OFF) +
           ((uint64_t)tag << UBLK_TAG_OFF) + offset;
}

/* struct ublksrv_ctrl_cmd as Linux 6.5 lays it out: the 6.1 header's
 * data[1] became the length of the /dev/ublkcN path that unprivileged
 * commands carry in front of their payload. */
struct ublk_ctrl_cmd {
    uint32_t dev_id;
    uint16_t queue_id;       /* always -1: no control command is per queue */
    uint16_t len;
    uint64_t addr;
    uint64_t data;
    uint16_t dev_path_len;
    uint16_t pad;
    uint32_t reserved;
};

#define UBLK_CTRL_PATH    "/dev/ublk-control"
#define UBLK_NO_ID        UINT32_MAX   /* ADD_DEV: the kernel picks */

/* A control channel: /dev/ublk-control and an io_uring with 128-byte
 * entries (control commands do not fit in 64). Used by one thread. */
struct ublk_ctrl;

/* Open the channel and check the kernel's ublk (GET_FEATURES): 0 or
 * -errno with spd_errmsg() set. *features may be NULL. */
int ublk_ctrl_open(struct ublk_ctrl **ctrl, uint64_t *features);
void ublk_ctrl_close(struct ublk_ctrl *ctrl);

/* Send one command for device id and wait for it: its result (>= 0), or
 * -errno. With unprivileged, the payload is preceded by the path of
 * /dev/ublkcID as the kernel requires of such devices. data is the
 * command's inline argument (a pid for START_DEV and END_USER_RECOVERY). */
int ublk_ctrl_cmd(struct ublk_ctrl *ctrl, uint32_t op, uint32_t id,
                  bool unprivileged, void *buf, uint16_t len, uint64_t data);

#endif
