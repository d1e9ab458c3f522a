/*
 * pr.c - reservations (SPC-4): PERSISTENT RESERVE IN and OUT, the
 * RESERVE and RELEASE of SPC-2, and which commands a reservation lets
 * each I_T nexus run. The state is the logical unit's (struct scsi_lu),
 * under nexus_lock; registrations live in the nexus slots (nexus.c).
 * Persistent reservations are not kept across restarts (PTPL_C 0)
 * unless the device shares them (spd_ops.pr_load, pr_update): then the
 * state lives in the device's store, as pr_blob.c writes it, for every
 * process serving the disk; PERSISTENT RESERVE OUT changes it there under
 * the store's lock, PERSISTENT RESERVE IN reads it from there, and other
 * commands are checked against the copy here, loaded again whenever the
 * device says the store changed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi/scsi_int.h"

/* PERSISTENT RESERVE IN service actions. */
enum { PRIN_READ_KEYS, PRIN_READ_RESERVATION, PRIN_REPORT_CAPABILITIES,
       PRIN_READ_FULL_STATUS };

/* PERSISTENT RESERVE OUT service actions. */
enum { PROUT_REGISTER, PROUT_RESERVE, PROUT_RELEASE, PROUT_CLEAR,
       PROUT_PREEMPT, PROUT_PREEMPT_AND_ABORT, PROUT_REGISTER_AND_IGNORE,
       PROUT_REGISTER_AND_MOVE };

/* Reservation types. */
enum { PR_WE = 1, PR_EA = 3, PR_WE_RO = 5, PR_EA_RO = 6, PR_WE_AR = 7,
       PR_EA_AR = 8 };

#define PROUT_LIST_LEN 24

bool scsi_pr_type_valid(uint8_t type)
{
    return type == PR_WE || type == PR_EA || type == PR_WE_RO ||
           type == PR_EA_RO || type == PR_WE_AR || type == PR_EA_AR;
}

static bool type_all_registrants(uint8_t type)
{
    return type == PR_WE_AR || type == PR_EA_AR;
}

static bool type_registrants(uint8_t type)
{
    return type == PR_WE_RO || type == PR_EA_RO || type_all_registrants(type);
}

static bool type_exclusive_access(uint8_t type)
{
    return type == PR_EA || type == PR_EA_RO || type == PR_EA_AR;
}

static bool registered(const struct scsi_lu *lu, int slot)
{
    return slot >= 0 && lu->nexus[slot].registered;
}

/* Whether slot holds the persistent reservation: with an all registrants
 * type every registrant does (SPC-4 "Persistent reservation holder"). */
static bool pr_holds(const struct scsi_lu *lu, int slot)
{
    if (lu->pr_holder < 0)
        return false;
    if (type_all_registrants(lu->pr_type))
        return registered(lu, slot);
    return slot == lu->pr_holder;
}

/*
 * SPC-4 and SBC-3 tables of commands allowed in the presence of
 * reservations, by the row's class: ROW_PR_READ commands conflict with
 * an exclusive access reservation, ROW_PR_WRITE ones with any, for a
 * nexus that neither holds it nor (registrants only and all registrants
 * types) is registered. A RESERVE(6)/(10) of another nexus forbids those
 * and ROW_PR_SPC2 ones. nexus_lock held.
 */
bool scsi_pr_allows(const struct scsi_lu *lu, int slot,
                    const struct scsi_args *a)
{
    uint16_t flags = a->row->flags;
    if (lu->reserve_holder >= 0 && lu->reserve_holder != slot &&
        (flags & (ROW_PR_READ | ROW_PR_WRITE | ROW_PR_SPC2)))
        return false;
    if (lu->pr_holder < 0 || !(flags & (ROW_PR_READ | ROW_PR_WRITE)))
        return true;
    if (pr_holds(lu, slot) ||
        (type_registrants(lu->pr_type) && registered(lu, slot)))
        return true;
    return (flags & ROW_PR_READ) && !type_exclusive_access(lu->pr_type);
}

static enum scsi_action conflict(struct scsi_task *task)
{
    task->status = (spd_status){
        .scsi_status = SPD_STATUS_RESERVATION_CONFLICT };
    return SCSI_DONE;
}

/* ------------------------------------------------------------------ */
/* RESERVE(6)/(10), RELEASE(6)/(10) (SPC-2)                             */
/* ------------------------------------------------------------------ */

/* A persistent reservation (SPC-4) makes RESERVE conflict; another
 * nexus's RESERVE too; the holder may reserve again. */
enum scsi_action spc_reserve(struct scsi_lu *lu, struct scsi_task *task,
                             const struct scsi_args *a)
{
    (void)a;
    pthread_mutex_lock(&lu->nexus_lock);
    bool ok = task->slot >= 0 && lu->pr_holder < 0 &&
              (lu->reserve_holder < 0 || lu->reserve_holder == task->slot);
    if (ok)
        lu->reserve_holder = task->slot;
    pthread_mutex_unlock(&lu->nexus_lock);
    return ok ? SCSI_DONE : conflict(task);
}

/* Only the holder's RELEASE releases; anyone else's is GOOD and does
 * nothing. */
enum scsi_action spc_release(struct scsi_lu *lu, struct scsi_task *task,
                             const struct scsi_args *a)
{
    (void)a;
    pthread_mutex_lock(&lu->nexus_lock);
    if (lu->reserve_holder == task->slot)
        lu->reserve_holder = -1;
    pthread_mutex_unlock(&lu->nexus_lock);
    return SCSI_DONE;
}

/* RESERVE(10)/RELEASE(10): no third-party reservations. */
bool spc_reserve10_check(const struct scsi_lu *lu, struct scsi_args *a,
                         spd_status *st)
{
    (void)lu;
    if (a->cdb[1] & 0x12) {             /* 3RDPTY, LONGID */
        scsi_invalid_field(st, true, 1, scsi_highest_bit(a->cdb[1] & 0x12));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* The state shared with other processes (spd_ops.pr_load, pr_update)   */
/* ------------------------------------------------------------------ */

void scsi_pr_share(struct scsi_lu *lu, const struct scsi_pr_store *store)
{
    pthread_mutex_init(&lu->pr_lock, NULL);
    if (store)
        lu->pr_store = *store;
    atomic_init(&lu->pr_stale, store != NULL);   /* load it first */
}

void scsi_pr_fini(struct scsi_lu *lu)
{
    pthread_mutex_destroy(&lu->pr_lock);
}

void scsi_pr_changed(struct scsi_lu *lu)
{
    atomic_store(&lu->pr_stale, true);
}

/* The state could not be had: too many registrations for the nexus
 * slots; a store that may not be written (a read-only image); or the
 * store unreachable, or its blob corrupt or another format's: nothing
 * can be decided from it. */
static void store_failed(spd_status *st, int r)
{
    if (r == -ENOSPC)
        scsi_illegal(st, SPD_ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
    else if (r == -EROFS)
        scsi_sense_set(st, SPD_KEY_DATA_PROTECT, SPD_ASC_WRITE_PROTECTED);
    else
        scsi_sense_set(st, SPD_KEY_HARDWARE_ERROR,
                       SPD_ASC_INTERNAL_TARGET_FAILURE);
}

bool scsi_pr_refresh(struct scsi_lu *lu, bool force, spd_status *st)
{
    if (!lu->pr_store.load || (!force && !atomic_load(&lu->pr_stale)))
        return true;
    int r = 0;
    pthread_mutex_lock(&lu->pr_lock);
    /* Cleared before the load: a change told during it is loaded next. */
    if (atomic_exchange(&lu->pr_stale, false) || force) {
        uint8_t *buf = malloc(SPD_PR_STATE_MAX);
        r = buf ? lu->pr_store.load(lu->pr_store.ctx, buf, SPD_PR_STATE_MAX)
                : -ENOMEM;
        if (r > SPD_PR_STATE_MAX)
            r = -EINVAL;
        pthread_mutex_lock(&lu->nexus_lock);
        r = r < 0 ? r : scsi_pr_install(lu, buf, (size_t)r);
        pthread_mutex_unlock(&lu->nexus_lock);
        if (r < 0)
            atomic_store(&lu->pr_stale, true);
        free(buf);
    }
    pthread_mutex_unlock(&lu->pr_lock);
    if (r < 0)
        store_failed(st, r);
    return r >= 0;
}

/* ------------------------------------------------------------------ */
/* PERSISTENT RESERVE IN (SPC-4)                                        */
/* ------------------------------------------------------------------ */

/* A TransportID (SPC-4, iSCSI: "iSCSI TransportID"): the initiator port
 * name ("name,i,0xISID", format 01b) when there is an ISID, the name
 * alone (format 00b) otherwise; NUL-padded to a multiple of four. */
static size_t transport_id(const spd_scsi_nexus *id, uint8_t *p)
{
    char name[SPD_SCSI_NAME_MAX + 20];
    int len;
    if (id->has_isid)
        len = snprintf(name, sizeof name, "%s,i,0x%02x%02x%02x%02x%02x%02x",
                       id->name, id->isid[0], id->isid[1], id->isid[2],
                       id->isid[3], id->isid[4], id->isid[5]);
    else
        len = snprintf(name, sizeof name, "%s", id->name);
    size_t n = ((size_t)len + 1 + 3) & ~(size_t)3;
    if (n < 20)
        n = 20;
    memset(p, 0, 4 + n);
    p[0] = (uint8_t)((id->has_isid ? 0x40 : 0x00) | 0x05);  /* iSCSI */
    put_be16(p + 2, (uint16_t)n);
    memcpy(p + 4, name, (size_t)len);
    return 4 + n;
}

static size_t prin_read_keys(const struct scsi_lu *lu, uint8_t *buf,
                             size_t cap)
{
    size_t n = 8;
    for (int i = 0; i < SCSI_NEXUS_MAX && n + 8 <= cap; i++)
        if (lu->nexus[i].registered) {
            put_be64(buf + n, lu->nexus[i].key);
            n += 8;
        }
    put_be32(buf, lu->pr_generation);
    put_be32(buf + 4, (uint32_t)(n - 8));
    return n;
}

static size_t prin_read_reservation(const struct scsi_lu *lu, uint8_t *buf)
{
    memset(buf, 0, 24);
    put_be32(buf, lu->pr_generation);
    if (lu->pr_holder < 0)
        return 8;
    put_be32(buf + 4, 16);
    /* All registrants types: the key is zero (SPC-4). */
    if (!type_all_registrants(lu->pr_type))
        put_be64(buf + 8, lu->nexus[lu->pr_holder].key);
    buf[21] = lu->pr_type;                  /* SCOPE 0h: logical unit */
    return 24;
}

static size_t prin_report_capabilities(uint8_t *buf)
{
    memset(buf, 0, 8);
    put_be16(buf, 8);
    buf[2] = 0x10 | 0x04;       /* CRH, ATP_C; no SIP_C, no PTPL_C */
    buf[3] = 0x80;              /* TMV: the type mask is valid */
    buf[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;   /* WR_EX_AR .. WR_EX */
    buf[5] = 0x01;                               /* EX_AC_AR */
    return 8;
}

static size_t prin_read_full_status(const struct scsi_lu *lu, uint8_t *buf,
                                    size_t cap)
{
    size_t n = 8;
    for (int i = 0; i < SCSI_NEXUS_MAX; i++) {
        const struct scsi_nexus_rec *r = &lu->nexus[i];
        if (!r->registered)
            continue;
        uint8_t d[24 + 4 + SPD_SCSI_NAME_MAX + 24];
        memset(d, 0, 24);
        put_be64(d, r->key);
        d[12] = (uint8_t)((r->all_tg_pt ? 0x02 : 0) |
                          (pr_holds(lu, i) ? 0x01 : 0));
        if (pr_holds(lu, i))
            d[13] = lu->pr_type;
        put_be16(d + 18, r->id.rel_port);
        size_t t = transport_id(&r->id, d + 24);
        put_be32(d + 20, (uint32_t)t);
        if (n + 24 + t > cap)
            break;
        memcpy(buf + n, d, 24 + t);
        n += 24 + t;
    }
    put_be32(buf, lu->pr_generation);
    put_be32(buf + 4, (uint32_t)(n - 8));
    return n;
}

enum scsi_action spc_prin(struct scsi_lu *lu, struct scsi_task *task,
                          const struct scsi_args *a)
{
    uint8_t buf[SCSI_REPLY_MAX];
    size_t n = 0;
    if (!scsi_pr_refresh(lu, true, &task->status))
        return SCSI_DONE;
    pthread_mutex_lock(&lu->nexus_lock);
    switch (a->cdb[1] & 0x1f) {
    case PRIN_READ_KEYS:
        n = prin_read_keys(lu, buf, sizeof buf);
        break;
    case PRIN_READ_RESERVATION:
        n = prin_read_reservation(lu, buf);
        break;
    case PRIN_REPORT_CAPABILITIES:
        n = prin_report_capabilities(buf);
        break;
    case PRIN_READ_FULL_STATUS:
        n = prin_read_full_status(lu, buf, sizeof buf);
        break;
    }
    pthread_mutex_unlock(&lu->nexus_lock);
    return scsi_reply(task, buf, n, a->count);
}

/* ------------------------------------------------------------------ */
/* PERSISTENT RESERVE OUT (SPC-4)                                       */
/* ------------------------------------------------------------------ */

bool spc_prout_check(const struct scsi_lu *lu, struct scsi_args *a,
                     spd_status *st)
{
    (void)lu;
    uint8_t sa = a->cdb[1] & 0x1f;
    bool typed = sa == PROUT_RESERVE || sa == PROUT_RELEASE ||
                 sa == PROUT_PREEMPT || sa == PROUT_PREEMPT_AND_ABORT;
    if (typed && (a->cdb[2] >> 4) != 0) {           /* SCOPE: LU only */
        scsi_invalid_field(st, true, 2, 7);
        return false;
    }
    if (typed && !scsi_pr_type_valid(a->cdb[2] & 0x0f)) {
        scsi_invalid_field(st, true, 2, 3);
        return false;
    }
    return true;
}

/* What the command works with. */
struct prout {
    struct scsi_lu *lu;
    int slot;
    uint64_t key, sa_key;
    uint8_t type;
    bool all_tg_pt;
    const uint8_t *list;
    size_t len;
};

/* The reservation ends; with a registrants only or all registrants type
 * the other registrants learn it (SPC-4 "Releasing"). */
static void pr_release(struct scsi_lu *lu, int by, bool tell)
{
    if (tell && type_registrants(lu->pr_type))
        for (int i = 0; i < SCSI_NEXUS_MAX; i++)
            if (lu->nexus[i].registered && i != by)
                lu->nexus[i].ua |= 1u << UA_RESERVATIONS_RELEASED;
    lu->pr_holder = -1;
    lu->pr_type = 0;
}

/* Registration removed: a reservation it held goes with it (with all
 * registrants, when it was the last registrant). */
static void unregister(struct scsi_lu *lu, int slot)
{
    lu->nexus[slot].registered = false;
    lu->nexus[slot].key = 0;
    if (lu->pr_holder < 0)
        return;
    if (type_all_registrants(lu->pr_type)) {
        int other = -1;
        for (int i = 0; i < SCSI_NEXUS_MAX && other < 0; i++)
            if (lu->nexus[i].registered)
                other = i;
        if (other < 0)
            pr_release(lu, slot, false);
        else if (lu->pr_holder == slot)
            lu->pr_holder = other;
    } else if (lu->pr_holder == slot) {
        pr_release(lu, slot, true);
    }
}

/* ALL_TG_PT: the initiator port is registered through every target port
 * of the unit (SPC-4), one per target port group of the gateways serving
 * it (spd_params.port_groups; without groups the unit has one port).
 * Slots for all first, so that a lack of them changes nothing. */
static bool register_all_ports(struct prout *o, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    const spd_params *p = lu->params;
    int slots[SPD_PORT_GROUPS_MAX];
    spd_scsi_nexus id = lu->nexus[o->slot].id;
    for (unsigned g = 0; g < p->port_group_count; g++) {
        id.rel_port = p->port_groups[g].id;
        if ((slots[g] = scsi_nexus_slot(lu, &id)) < 0) {
            scsi_illegal(st, SPD_ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
            return false;
        }
    }
    for (unsigned g = 0; g < p->port_group_count; g++) {
        struct scsi_nexus_rec *r = &lu->nexus[slots[g]];
        r->registered = r->all_tg_pt = true;
        r->key = o->sa_key;
    }
    return true;
}

/* REGISTER checks the key it is given; REGISTER AND IGNORE does not. */
static bool prout_register(struct prout *o, bool ignore, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    struct scsi_nexus_rec *r = &lu->nexus[o->slot];
    if (!ignore && (r->registered ? o->key != r->key : o->key != 0))
        return false;
    if (!r->registered && o->sa_key == 0)
        return true;                        /* nothing to do */
    if (o->sa_key == 0) {
        unregister(lu, o->slot);
    } else {
        if (o->all_tg_pt && !register_all_ports(o, st))
            return true;                    /* the sense says why */
        r->registered = true;
        r->key = o->sa_key;
        r->all_tg_pt = o->all_tg_pt;
    }
    lu->pr_generation++;
    return true;
}

static bool prout_reserve(struct prout *o)
{
    struct scsi_lu *lu = o->lu;
    if (lu->pr_holder < 0) {
        if (lu->reserve_holder >= 0 && lu->reserve_holder != o->slot)
            return false;
        lu->pr_holder = o->slot;
        lu->pr_type = o->type;
        return true;
    }
    return pr_holds(lu, o->slot) && lu->pr_type == o->type;
}

static bool prout_release(struct prout *o, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    if (!pr_holds(lu, o->slot))
        return true;                        /* GOOD, nothing released */
    if (lu->pr_type != o->type) {
        scsi_illegal(st, SPD_ASC_INVALID_RELEASE_OF_PR);
        return true;
    }
    pr_release(lu, o->slot, true);
    return true;
}

/* CLEAR: every registration and the reservation go; the other
 * registrants learn it. */
static void prout_clear(struct prout *o)
{
    struct scsi_lu *lu = o->lu;
    for (int i = 0; i < SCSI_NEXUS_MAX; i++) {
        if (lu->nexus[i].registered && i != o->slot)
            lu->nexus[i].ua |= 1u << UA_RESERVATIONS_PREEMPTED;
        lu->nexus[i].registered = false;
        lu->nexus[i].key = 0;
    }
    lu->pr_holder = -1;
    lu->pr_type = 0;
    lu->pr_generation++;
}

/* Remove the registrations with key (all others but slot's when key is
 * 0); returns how many. */
static int preempt_keys(struct scsi_lu *lu, int slot, uint64_t key, bool all)
{
    int removed = 0;
    for (int i = 0; i < SCSI_NEXUS_MAX; i++) {
        struct scsi_nexus_rec *r = &lu->nexus[i];
        if (!r->registered || i == slot || (!all && r->key != key))
            continue;
        r->registered = false;
        r->key = 0;
        r->ua |= 1u << UA_REGISTRATIONS_PREEMPTED;
        removed++;
    }
    return removed;
}

/* PREEMPT (SPC-4 "Preempting"): registrations of SERVICE ACTION
 * RESERVATION KEY removed; when they held the reservation (or, with all
 * registrants, the key is 0), it becomes this nexus's, of the new type. */
static bool prout_preempt(struct prout *o, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    bool all_reg = lu->pr_holder >= 0 && type_all_registrants(lu->pr_type);
    bool takes = lu->pr_holder >= 0 &&
                 (all_reg ? o->sa_key == 0
                          : lu->nexus[lu->pr_holder].key == o->sa_key);
    if (!takes) {
        if (o->sa_key == 0) {
            scsi_invalid_field(st, false, 8, -1);
            return true;
        }
        if (!preempt_keys(lu, o->slot, o->sa_key, false))
            return false;
        lu->pr_generation++;
        return true;
    }
    preempt_keys(lu, o->slot, o->sa_key, all_reg);
    lu->pr_holder = o->slot;
    lu->pr_type = o->type;
    lu->pr_generation++;
    return true;
}

/* The nexus a REGISTER AND MOVE names: its TransportID (iSCSI, format
 * 00b or 01b) and relative target port. -1 when malformed. */
static int move_target(struct prout *o, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    const uint8_t *p = o->list;
    if (o->len < PROUT_LIST_LEN + 4) {
        scsi_illegal(st, SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
        return -1;
    }
    uint32_t tlen = get_be32(p + 20);
    const uint8_t *t = p + PROUT_LIST_LEN;
    if (tlen < 4 || tlen > o->len - PROUT_LIST_LEN || (t[0] & 0x0f) != 0x05) {
        scsi_invalid_field(st, false, PROUT_LIST_LEN, -1);
        return -1;
    }
    size_t nlen = get_be16(t + 2);
    if (nlen + 4 > tlen || nlen >= SPD_SCSI_NAME_MAX + 20) {
        scsi_invalid_field(st, false, PROUT_LIST_LEN + 2, -1);
        return -1;
    }
    spd_scsi_nexus id = { SPD_SCSI_NEXUS_INIT };
    char name[SPD_SCSI_NAME_MAX + 20];
    memcpy(name, t + 4, nlen);
    name[nlen] = '\0';
    char *sep = strstr(name, ",i,0x");
    if ((t[0] & 0xc0) == 0x40) {
        unsigned v[6];
        if (!sep || sscanf(sep + 5, "%2x%2x%2x%2x%2x%2x", &v[0], &v[1],
                           &v[2], &v[3], &v[4], &v[5]) != 6) {
            scsi_invalid_field(st, false, PROUT_LIST_LEN + 4, -1);
            return -1;
        }
        *sep = '\0';
        for (int i = 0; i < 6; i++)
            id.isid[i] = (uint8_t)v[i];
        id.has_isid = true;
    }
    if (strlen(name) >= SPD_SCSI_NAME_MAX) {
        scsi_invalid_field(st, false, PROUT_LIST_LEN + 4, -1);
        return -1;
    }
    strcpy(id.name, name);
    id.rel_port = get_be16(p + 18);
    int slot = scsi_nexus_slot(lu, &id);
    if (slot < 0)
        scsi_illegal(st, SPD_ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
    return slot;
}

/* REGISTER AND MOVE: the holder gives the reservation to another nexus,
 * registered with SERVICE ACTION RESERVATION KEY; UNREG drops its own
 * registration. */
static bool prout_move(struct prout *o, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    if (lu->pr_holder < 0 || type_all_registrants(lu->pr_type) ||
        lu->pr_holder != o->slot)
        return false;
    if (o->sa_key == 0) {
        scsi_invalid_field(st, false, 8, -1);
        return true;
    }
    int to = move_target(o, st);
    if (to < 0)
        return true;
    if (to == o->slot) {
        scsi_invalid_field(st, false, PROUT_LIST_LEN, -1);
        return true;
    }
    lu->nexus[to].registered = true;
    lu->nexus[to].key = o->sa_key;
    lu->pr_holder = to;
    if (o->list[17] & 0x02) {               /* UNREG */
        lu->nexus[o->slot].registered = false;
        lu->nexus[o->slot].key = 0;
    }
    lu->pr_generation++;
    return true;
}

/* The service action on the list; false: RESERVATION CONFLICT. */
static bool prout_run(struct prout *o, uint8_t sa, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    if (sa == PROUT_REGISTER || sa == PROUT_REGISTER_AND_IGNORE)
        return prout_register(o, sa == PROUT_REGISTER_AND_IGNORE, st);
    /* Every other action needs a registered nexus and its key. */
    if (!registered(lu, o->slot) || lu->nexus[o->slot].key != o->key)
        return false;
    switch (sa) {
    case PROUT_RESERVE:
        return prout_reserve(o);
    case PROUT_RELEASE:
        return prout_release(o, st);
    case PROUT_CLEAR:
        prout_clear(o);
        return true;
    case PROUT_PREEMPT:
    case PROUT_PREEMPT_AND_ABORT:
        return prout_preempt(o, st);
    default:
        return prout_move(o, st);
    }
}

/* A PERSISTENT RESERVE OUT on the shared state, inside the device's
 * pr_update: the state as stored, the service action, the new state
 * stored when the command succeeded. */
struct prout_apply {
    struct prout *o;
    const spd_scsi_nexus *nexus;
    uint8_t sa;
    spd_status *st;
    bool ok;
};

static int prout_apply(void *arg, void *buf, size_t len)
{
    struct prout_apply *x = arg;
    struct scsi_lu *lu = x->o->lu;
    pthread_mutex_lock(&lu->nexus_lock);
    int r = len > SPD_PR_STATE_MAX ? -EINVAL : scsi_pr_install(lu, buf, len);
    /* The state's nexuses took slots: the command's own found again. */
    if (r >= 0 && (x->o->slot = scsi_nexus_slot(lu, x->nexus)) < 0)
        r = -ENOSPC;
    if (r >= 0) {
        x->ok = prout_run(x->o, x->sa, x->st);
        /* A command that failed changed nothing to store. */
        r = x->ok && spd_status_good(x->st) ? (int)scsi_pr_encode(lu, buf)
                                            : 0;
    }
    pthread_mutex_unlock(&lu->nexus_lock);
    return r;
}

static bool prout_shared(struct prout *o, const spd_scsi_nexus *nexus,
                         uint8_t sa, spd_status *st)
{
    struct scsi_lu *lu = o->lu;
    struct prout_apply x = { o, nexus, sa, st, false };
    pthread_mutex_lock(&lu->pr_lock);
    int r = lu->pr_store.update(lu->pr_store.ctx, prout_apply, &x);
    pthread_mutex_unlock(&lu->pr_lock);
    if (r >= 0)
        return x.ok;
    /* Maybe changed here and not stored: load it again. */
    atomic_store(&lu->pr_stale, true);
    store_failed(st, r);
    return true;
}

enum scsi_action spc_prout(struct scsi_lu *lu, struct scsi_task *task,
                           const struct scsi_args *a)
{
    uint8_t sa = a->cdb[1] & 0x1f;
    size_t len = a->count < task->data_len ? a->count : task->data_len;
    const uint8_t *p = task->data;

    if (sa == PROUT_REGISTER_AND_MOVE ? len < PROUT_LIST_LEN
                                      : a->count != PROUT_LIST_LEN ||
                                        len < PROUT_LIST_LEN) {
        scsi_illegal(&task->status, SPD_ASC_PARAMETER_LIST_LENGTH_ERROR);
        return SCSI_DONE;
    }
    if (sa != PROUT_REGISTER_AND_MOVE && (p[20] & 0x08)) {  /* SPEC_I_PT */
        scsi_invalid_field(&task->status, false, 20, 3);
        return SCSI_DONE;
    }
    if (sa != PROUT_REGISTER_AND_MOVE && (p[20] & 0x01)) {  /* APTPL */
        scsi_invalid_field(&task->status, false, 20, 0);
        return SCSI_DONE;
    }
    if (task->slot < 0) {
        scsi_illegal(&task->status,
                     SPD_ASC_INSUFFICIENT_REGISTRATION_RESOURCES);
        return SCSI_DONE;
    }
    struct prout o = {
        .lu = lu, .slot = task->slot, .key = get_be64(p),
        .sa_key = get_be64(p + 8), .type = a->cdb[2] & 0x0f,
        .all_tg_pt = sa != PROUT_REGISTER_AND_MOVE && (p[20] & 0x04),
        .list = p, .len = len,
    };
    bool ok;
    if (lu->pr_store.update) {
        ok = prout_shared(&o, task->nexus, sa, &task->status);
    } else {
        pthread_mutex_lock(&lu->nexus_lock);
        ok = prout_run(&o, sa, &task->status);
        pthread_mutex_unlock(&lu->nexus_lock);
    }
    return ok ? SCSI_DONE : conflict(task);
}
