/*
 * iscsi.h - export storage units as iSCSI targets (RFC 7143), to Linux
 * open-iscsi, the Windows initiator, VMware, qemu and libiscsi.
 *
 * A target has one or more names (iqn., eui. or naa. form); each name
 * holds logical units numbered from 0, each one a spd_unit. Initiators
 * send SCSI commands; libspd's SCSI engine answers them from the unit.
 * Discovery sessions (SendTargets) list every name with the address the
 * initiator reached.
 *
 * What the target negotiates: AuthMethod None or CHAP (MD5, one-way or
 * mutual), HeaderDigest and DataDigest None or CRC32C, ErrorRecoveryLevel
 * 0, one connection per session, up to 128 commands queued per session.
 *
 * Typical use:
 *
 *     spd_iscsi_target *t = spd_iscsi_target_create(NULL);
 *     spd_iscsi_target_add(t, unit, "iqn.2026-01.org.example:disk", 0);
 *     spd_iscsi_target_listen(t, "iscsi://127.0.0.1:3260");
 *     spd_iscsi_target_start(t);
 *     ... until asked to stop ...
 *     spd_iscsi_target_destroy(t);
 *
 * Functions return 0 or a negative errno with spd_errmsg() saying why, or
 * NULL with errno set. Configure (add, set_chap, listen) before
 * start; the units must outlive the target.
 */
#ifndef SPD_ISCSI_H
#define SPD_ISCSI_H

#include <stddef.h>

#include "spd/spd.h"
#include "spd/server.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPD_ISCSI_DEFAULT_PORT 3260

typedef struct spd_iscsi_target spd_iscsi_target;

/* A target with no names, no listeners and no authentication; options
 * NULL: the defaults (see spd/server.h). NULL with errno on failure. */
spd_iscsi_target *spd_iscsi_target_create(const spd_server_options *options);

/*
 * Export unit as logical unit lun (0 to 16383) of the target called iqn,
 * which is created by its first LUN. The name is an iSCSI name:
 * "iqn.YYYY-MM.reversed.domain[:anything]", "eui." and 16 hex digits, or
 * "naa." and 16 or 32 hex digits; at most 223 bytes of a-z, 0-9, '-', '.'
 * and ':'. iSCSI names are case-insensitive: upper case is stored as
 * lower case. One unit is usually LUN 0; several may share a name.
 * 0, -EINVAL for a bad name or LUN, -EEXIST for a LUN in use.
 */
int spd_iscsi_target_add(spd_iscsi_target *tgt, spd_unit *unit,
                         const char *iqn, unsigned lun);

/* Whether iqn is an iSCSI name the target takes (see above): 0, or
 * -EINVAL with spd_errmsg() saying why. For checking options early. */
int spd_iscsi_name_check(const char *iqn);

/*
 * Require CHAP (RFC 1994, MD5) from initiators logging in to the target
 * called iqn (added before with spd_iscsi_target_add), or, with iqn
 * NULL, to every target without its own secrets and to discovery
 * sessions. The secrets are read from a file, never from a command line:
 *
 *     # comment lines and blank lines are ignored
 *     alice  a-secret-of-12-to-255-bytes     initiator alice may log in
 *     bob    another-secret-for-bob          (as many users as needed)
 *     mutual tgt-user  the-targets-own-secret  mutual CHAP (at most one)
 *
 * A "USER SECRET" line lets an initiator log in by proving it knows
 * SECRET for USER (CHAP_N=USER). The "mutual USER SECRET" line is what
 * the target answers with when the initiator also asks the target to
 * authenticate (CHAP_I/CHAP_C): it sends CHAP_N=USER and a response made
 * with SECRET. Fields are separated by spaces or tabs; a secret runs to
 * the end of the line (trailing blanks removed), so it may hold spaces.
 * Secrets are 12 to 255 bytes (RFC 7143 asks for at least 96 bits); the
 * target's secret must differ from every initiator secret. The file must
 * not be readable by others (mode o-r). 0, or -errno with spd_errmsg()
 * naming the file and line.
 */
int spd_iscsi_target_set_chap(spd_iscsi_target *tgt, const char *iqn,
                              const char *secrets_file);

/*
 * Listen for initiators on address: "iscsi://HOST[:PORT]", or HOST:PORT,
 * "[IPV6]:PORT", HOST (port 3260), a host name; "systemd" or
 * "systemd:FDNAME" for sockets from systemd socket activation (see
 * spd/server.h); NULL or "" mean 127.0.0.1:3260. Port 0 picks a free port
 * (see spd_iscsi_target_listener_uri). All interfaces only when asked
 * for: "0.0.0.0:PORT" or "[::]:PORT". May be called more than once.
 * 0 or -errno.
 */
int spd_iscsi_target_listen(spd_iscsi_target *tgt, const char *address);

/* The address of listener index (in the order listened), with the real
 * port after port 0: "iscsi://127.0.0.1:3260", "iscsi://[::1]:3260". 0,
 * -ENOENT past the last, -ENOSPC when size is too small. */
int spd_iscsi_target_listener_uri(const spd_iscsi_target *tgt, unsigned index,
                                  char *buf, size_t size);

/* The TCP port of the first TCP listener, or 0. */
int spd_iscsi_target_port(const spd_iscsi_target *tgt);

/* Start accepting initiators; each connection is served by its own
 * thread. Needs at least one target name and one listener. 0 or -errno. */
int spd_iscsi_target_start(spd_iscsi_target *tgt);

/* Stop: close the door, let the commands already handed to the units
 * complete and their responses go out, then close every connection, and
 * wait for that. Commands still waiting for their data are dropped; an
 * initiator that does not read its responses is cut off after a few
 * seconds. */
void spd_iscsi_target_stop(spd_iscsi_target *tgt);

/* Stop if needed and free the target (not the units). NULL is allowed. */
void spd_iscsi_target_destroy(spd_iscsi_target *tgt);

#ifdef __cplusplus
}
#endif

#endif /* SPD_ISCSI_H */
