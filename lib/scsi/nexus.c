/*
 * nexus.c - the I_T nexuses a logical unit knows (SAM-5), the unit
 * attention conditions pending for each (SPC-4 "Unit attention
 * condition"), and the gate every command passes before its handler:
 * a pending unit attention is reported (once, then cleared), and a
 * command a reservation forbids ends in RESERVATION CONFLICT (pr.c),
 * after reservations shared with other processes are loaded again when
 * they changed.
 */
#include <string.h>

#include "scsi/scsi_int.h"

static const uint16_t ua_codes[UA_COUNT] = {
    [UA_POWER_ON] = SPD_ASC_POWER_ON_RESET,
    [UA_RESET] = SPD_ASC_BUS_DEVICE_RESET,
    [UA_RESERVATIONS_PREEMPTED] = SPD_ASC_RESERVATIONS_PREEMPTED,
    [UA_RESERVATIONS_RELEASED] = SPD_ASC_RESERVATIONS_RELEASED,
    [UA_REGISTRATIONS_PREEMPTED] = SPD_ASC_REGISTRATIONS_PREEMPTED,
    [UA_MODE_CHANGED] = SPD_ASC_MODE_PARAMETERS_CHANGED,
    [UA_CAPACITY_CHANGED] = SPD_ASC_CAPACITY_DATA_CHANGED,
    [UA_ALUA_CHANGED] = SPD_ASC_ASYMMETRIC_ACCESS_STATE_CHANGED,
};

static bool nexus_same(const spd_scsi_nexus *a, const spd_scsi_nexus *b)
{
    return a->has_isid == b->has_isid && a->rel_port == b->rel_port &&
           !memcmp(a->isid, b->isid, sizeof a->isid) &&
           !strcmp(a->name, b->name);
}

/* A slot nothing refers to: no registration, no reservation. */
static bool slot_free_to_forget(const struct scsi_lu *lu, int i)
{
    return i != 0 && !lu->nexus[i].registered && lu->pr_holder != i &&
           lu->reserve_holder != i;
}

int scsi_nexus_find(const struct scsi_lu *lu, const spd_scsi_nexus *id)
{
    if (!id)
        return 0;
    for (int i = 1; i < SCSI_NEXUS_MAX; i++)
        if (lu->nexus[i].used && nexus_same(&lu->nexus[i].id, id))
            return i;
    return -1;
}

/* The slot of a nexus, made for it when new: a nexus the unit has not
 * seen gets the power-on unit attention (SPC-4: each I_T nexus sees
 * one after power on). -1 when every slot is taken by registrations.
 * nexus_lock held. */
int scsi_nexus_slot(struct scsi_lu *lu, const spd_scsi_nexus *id)
{
    int i = scsi_nexus_find(lu, id);
    if (i < 0) {
        int oldest = -1;
        for (int j = 1; j < SCSI_NEXUS_MAX && i < 0; j++) {
            if (!lu->nexus[j].used)
                i = j;
            else if (slot_free_to_forget(lu, j) &&
                     (oldest < 0 || lu->nexus[j].seen < lu->nexus[oldest].seen))
                oldest = j;
        }
        if (i < 0)
            i = oldest;
        if (i < 0)
            return -1;
        lu->nexus[i] = (struct scsi_nexus_rec){ .id = *id, .used = true,
                                                .ua = 1u << UA_POWER_ON };
        lu->nexus[i].id.name[SPD_SCSI_NAME_MAX - 1] = '\0';
    }
    lu->nexus[i].seen = ++lu->nexus_clock;
    return i;
}

bool scsi_ua_pending(struct scsi_lu *lu, const spd_scsi_nexus *nexus,
                     const struct scsi_row *row)
{
    if (lu->absent || (row->flags & ROW_NO_UA))
        return false;
    pthread_mutex_lock(&lu->nexus_lock);
    int slot = scsi_nexus_find(lu, nexus);
    bool pending = slot < 0 || lu->nexus[slot].ua;   /* new: power on's */
    pthread_mutex_unlock(&lu->nexus_lock);
    return pending;
}

void scsi_ua_raise(struct scsi_lu *lu, enum scsi_ua ua, int except)
{
    for (int i = 0; i < SCSI_NEXUS_MAX; i++)
        if (lu->nexus[i].used && i != except)
            lu->nexus[i].ua |= 1u << ua;
}

bool scsi_ua_take(struct scsi_lu *lu, int slot, spd_status *st)
{
    if (slot < 0 || !lu->nexus[slot].ua)
        return false;
    uint32_t pending = lu->nexus[slot].ua;
    int ua = __builtin_ctz(pending);
    /* A power on or reset condition covers the others of its kind. */
    lu->nexus[slot].ua &= ua <= UA_RESET ? ~((1u << UA_POWER_ON) |
                                            (1u << UA_RESET))
                                         : ~(1u << ua);
    scsi_sense_set(st, SPD_KEY_UNIT_ATTENTION, ua_codes[ua]);
    return true;
}

/* SPC-4 "Unit attention condition": INQUIRY, REPORT LUNS and REQUEST
 * SENSE run despite a pending unit attention (REQUEST SENSE reports and
 * clears it, spc.c); any other command reports it instead of running. */
bool scsi_gate(struct scsi_lu *lu, struct scsi_task *task,
               const struct scsi_args *a)
{
    if (lu->absent) {
        task->slot = -1;
        return true;
    }
    if (!scsi_sanitize_allows(lu, a->row, &task->status)) {
        task->slot = -1;
        return false;
    }
    /* Shared reservations changed elsewhere: loaded first. Without them
     * only the commands no persistent reservation forbids run (INQUIRY,
     * REPORT LUNS, ...). */
    spd_status st = { 0 };
    if (!scsi_pr_refresh(lu, false, &st) &&
        (a->row->flags & (ROW_PR_READ | ROW_PR_WRITE))) {
        task->slot = -1;
        task->status = st;
        return false;
    }
    bool pass = true;
    pthread_mutex_lock(&lu->nexus_lock);
    int slot = task->slot = scsi_nexus_slot(lu, task->nexus);
    /* As LIO: a unit attention first, then the access state of the port's
     * group (an initiator hears of a state change before it is refused
     * for it), then reservations. */
    if (!(a->row->flags & ROW_NO_UA) && scsi_ua_take(lu, slot, &task->status))
        pass = false;
    else if (!scsi_alua_allows(lu, a->row, &task->status))
        pass = false;
    else if (!scsi_pr_allows(lu, slot, a)) {
        task->status = (spd_status){
            .scsi_status = SPD_STATUS_RESERVATION_CONFLICT };
        pass = false;
    }
    pthread_mutex_unlock(&lu->nexus_lock);
    return pass;
}

void scsi_nexus_lost(struct scsi_lu *lu, const spd_scsi_nexus *nexus)
{
    pthread_mutex_lock(&lu->nexus_lock);
    int slot = scsi_nexus_find(lu, nexus);
    /* SPC-2: an I_T nexus loss releases its RESERVE. */
    if (slot >= 0 && lu->reserve_holder == slot)
        lu->reserve_holder = -1;
    pthread_mutex_unlock(&lu->nexus_lock);
}

/* The unit's capacity changed: every nexus hears of it (SBC-3). */
void scsi_lu_capacity_changed(struct scsi_lu *lu)
{
    pthread_mutex_lock(&lu->nexus_lock);
    scsi_ua_raise(lu, UA_CAPACITY_CHANGED, -1);
    pthread_mutex_unlock(&lu->nexus_lock);
}

/* SAM-5 LOGICAL UNIT RESET: RESERVE released, a unit attention for every
 * nexus (the one that asked too); persistent reservations stay. */
void scsi_lu_reset(struct scsi_lu *lu)
{
    pthread_mutex_lock(&lu->nexus_lock);
    lu->reserve_holder = -1;
    scsi_ua_raise(lu, UA_RESET, -1);
    pthread_mutex_unlock(&lu->nexus_lock);
}
