/*
 * alua.c - target port groups (SPC-4 "Target port group access") for a
 * disk served by several processes, each a gateway with one target port
 * in a group of its own: the configuration (spd_params.port_group and
 * port_groups) is checked and parsed here, the state of this process's
 * group gates every command (scsi_alua_allows, from the preamble), and
 * REPORT TARGET PORT GROUPS lists every group.
 *
 * The gateways never talk to each other, so one rule keeps their answers
 * consistent: a gateway's port has its group's id as relative target port
 * identifier. Each gateway is given the same list of groups and states,
 * and so reports the same groups, each with its one port.
 *
 * Implicit ALUA only (INQUIRY TPGS 01b): SET TARGET PORT GROUPS is not
 * supported, as a state set through one gateway would have to reach every
 * other process at once. The states change while the unit is served
 * (scsi_lu_set_alua, from spd_unit_set_alua): whatever manages the
 * gateways gives each the same new list, and every nexus hears of it.
 *
 * The states are read per command without a lock (one byte each, atomic
 * loads); a change stores them under nexus_lock, where its unit attention
 * is raised and where REPORT TARGET PORT GROUPS copies them, so an
 * initiator that has seen the unit attention reads the new states whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"
#include "scsi/scsi_int.h"

/* Without port groups: the one group, active/optimized. */
static const spd_port_group default_group = { SPD_DEFAULT_PORT_GROUP,
                                              SPD_ALUA_OPTIMIZED };

static uint8_t state_of(const spd_port_group *g)
{
    return __atomic_load_n(&g->state, __ATOMIC_RELAXED);
}

/* The groups and their states now into groups (SPD_PORT_GROUPS_MAX): their
 * count. nexus_lock held, so that a change is seen whole. */
static unsigned groups_copy(const spd_params *p, spd_port_group *groups)
{
    if (!p->port_group_count) {
        groups[0] = default_group;
        return 1;
    }
    for (unsigned i = 0; i < p->port_group_count; i++)
        groups[i] = (spd_port_group){ p->port_groups[i].id,
                                      state_of(&p->port_groups[i]) };
    return p->port_group_count;
}

uint16_t scsi_port_group(const spd_params *p)
{
    return p->port_group ? p->port_group : SPD_DEFAULT_PORT_GROUP;
}

/* ------------------------------------------------------------------ */
/* The configuration                                                    */
/* ------------------------------------------------------------------ */

static const char *const state_names[] = {
    [SPD_ALUA_OPTIMIZED] = "ao",
    [SPD_ALUA_NON_OPTIMIZED] = "ano",
    [SPD_ALUA_STANDBY] = "standby",
    [SPD_ALUA_UNAVAILABLE] = "unavailable",
};

#define STATE_COUNT (sizeof state_names / sizeof state_names[0])

static int groups_check(unsigned own, const spd_port_group *g, unsigned n)
{
    bool found = false;
    if (n > SPD_PORT_GROUPS_MAX)
        return spd_set_error(EINVAL, "%u port groups: at most %d", n,
                             SPD_PORT_GROUPS_MAX);
    for (unsigned i = 0; i < n; i++) {
        if (!g[i].id)
            return spd_set_error(EINVAL, "port group 0: ids go from 1 to "
                                 "65535");
        if (g[i].state >= STATE_COUNT)
            return spd_set_error(EINVAL, "port group %u: state %u is none "
                                 "of ao, ano, standby, unavailable",
                                 g[i].id, g[i].state);
        for (unsigned j = 0; j < i; j++)
            if (g[j].id == g[i].id)
                return spd_set_error(EINVAL, "port group %u is listed "
                                     "twice", g[i].id);
        found |= g[i].id == own;
    }
    if (!found)
        return spd_set_error(EINVAL, "port group %u, this process's, is not "
                             "among the groups listed", own);
    return 0;
}

int scsi_port_groups_check(const spd_params *p)
{
    /* A caller built before port groups has the default. */
    if (p->size < offsetof(spd_params, port_groups) + sizeof p->port_groups)
        return 0;
    if (!p->port_group && !p->port_group_count)
        return 0;
    if (!p->port_group || !p->port_group_count)
        return spd_set_error(EINVAL, "port_group and port_groups go "
                             "together: this process's group and every "
                             "gateway's");
    return groups_check(p->port_group, p->port_groups, p->port_group_count);
}

/* "ID:STATE" of length len into *g: 0 or -EINVAL. */
static int group_parse(const char *text, size_t len, spd_port_group *g)
{
    const char *colon = memchr(text, ':', len);
    char *end;
    if (!colon)
        return spd_set_error(EINVAL, "'%.*s' is not ID:STATE", (int)len,
                             text);
    unsigned long id = text[0] >= '0' && text[0] <= '9'
                       ? strtoul(text, &end, 10) : 0;
    if (!id || id > UINT16_MAX || end != colon)
        return spd_set_error(EINVAL, "'%.*s': the id is not a number from "
                             "1 to 65535", (int)len, text);
    size_t name_len = len - (size_t)(colon + 1 - text);
    for (unsigned s = 0; s < STATE_COUNT; s++)
        if (strlen(state_names[s]) == name_len &&
            !strncmp(colon + 1, state_names[s], name_len)) {
            *g = (spd_port_group){ .id = (uint16_t)id, .state = (uint8_t)s };
            return 0;
        }
    return spd_set_error(EINVAL, "'%.*s': the state is none of ao, ano, "
                         "standby, unavailable", (int)len, text);
}

/* The list "ID:STATE,..." into g (SPD_PORT_GROUPS_MAX): the count of
 * groups, or -EINVAL. Ids are not checked against each other. */
static int groups_parse(const char *states, spd_port_group *g)
{
    int n = 0, r;
    for (const char *s = states; ; s++) {
        size_t len = strcspn(s, ",");
        if (n == SPD_PORT_GROUPS_MAX)
            return spd_set_error(EINVAL, "more than %d port groups",
                                 SPD_PORT_GROUPS_MAX);
        if ((r = group_parse(s, len, &g[n++])))
            return r;
        s += len;
        if (!*s)
            return n;
    }
}

int spd_params_set_alua(spd_params *params, unsigned own, const char *states)
{
    spd_port_group g[SPD_PORT_GROUPS_MAX];
    int n, r;

    if (!params || !states)
        return spd_set_error(EINVAL, "spd_params_set_alua: params and "
                             "states are required");
    if (own < 1 || own > UINT16_MAX)
        return spd_set_error(EINVAL, "port group %u: ids go from 1 to 65535",
                             own);
    if ((n = groups_parse(states, g)) < 0)
        return n;
    if ((r = groups_check(own, g, (unsigned)n)))
        return r;
    params->port_group = (uint16_t)own;
    params->port_group_count = (uint16_t)n;
    memcpy(params->port_groups, g, (unsigned)n * sizeof g[0]);
    return 0;
}

/* The new states of the unit's groups, in the unit's order, into states:
 * 0, or -EINVAL when the list does not name exactly those groups. */
static int states_match(const spd_params *p, const spd_port_group *g,
                        unsigned n, uint8_t *states)
{
    if (!p->port_group_count)
        return spd_set_error(EINVAL, "the unit has no port groups to set "
                             "states of");
    if (groups_check(p->port_group, g, n))
        return -EINVAL;
    for (unsigned i = 0; i < n; i++) {
        unsigned j = 0;
        while (j < p->port_group_count && p->port_groups[j].id != g[i].id)
            j++;
        if (j == p->port_group_count)
            return spd_set_error(EINVAL, "port group %u is not one of the "
                                 "unit's", g[i].id);
        states[j] = g[i].state;
    }
    /* Ids are distinct, so as many as the unit's are all of them. */
    if (n != p->port_group_count)
        return spd_set_error(EINVAL, "the unit has %u port groups, %u "
                             "listed: each is to be listed once",
                             p->port_group_count, n);
    return 0;
}

int scsi_lu_set_alua(struct scsi_lu *lu, spd_params *params,
                     const char *states)
{
    spd_port_group g[SPD_PORT_GROUPS_MAX];
    uint8_t next[SPD_PORT_GROUPS_MAX];
    int n, r;

    if ((n = groups_parse(states, g)) < 0)
        return n;
    if ((r = states_match(params, g, (unsigned)n, next)))
        return r;
    bool changed = false;
    pthread_mutex_lock(&lu->nexus_lock);
    for (int i = 0; i < n; i++) {
        changed |= state_of(&params->port_groups[i]) != next[i];
        __atomic_store_n(&params->port_groups[i].state, next[i],
                         __ATOMIC_RELAXED);
    }
    /* SPC-4: every I_T nexus hears of a change, so that it asks for the
     * states again. */
    if (changed)
        scsi_ua_raise(lu, UA_ALUA_CHANGED, -1);
    pthread_mutex_unlock(&lu->nexus_lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */
/* ------------------------------------------------------------------ */

/* SPC-4 "Standby state" and "Unavailable state": what a port in them
 * still runs is marked in the opcode table (ROW_STANDBY, ROW_UNAVAILABLE);
 * anything else ends in NOT READY, LOGICAL UNIT NOT ACCESSIBLE. */
bool scsi_alua_allows(const struct scsi_lu *lu, const struct scsi_row *row,
                      spd_status *st)
{
    const spd_params *p = lu->params;
    uint8_t state = SPD_ALUA_OPTIMIZED;
    for (unsigned i = 0; i < p->port_group_count; i++)
        if (p->port_groups[i].id == p->port_group)
            state = state_of(&p->port_groups[i]);
    if (state == SPD_ALUA_STANDBY &&
        !(row->flags & (ROW_STANDBY | ROW_UNAVAILABLE))) {
        scsi_sense_set(st, SPD_KEY_NOT_READY,
                       SPD_ASC_LUN_NOT_ACCESSIBLE_STANDBY);
        return false;
    }
    if (state == SPD_ALUA_UNAVAILABLE && !(row->flags & ROW_UNAVAILABLE)) {
        scsi_sense_set(st, SPD_KEY_NOT_READY,
                       SPD_ASC_LUN_NOT_ACCESSIBLE_UNAVAILABLE);
        return false;
    }
    return true;
}

#define TPG_DESC_LEN 12     /* a group descriptor with its one port */

/* REPORT TARGET PORT GROUPS (SPC-4): every group, with its state and its
 * one port (the gateway's, whose id is the group's); PREF on the
 * active/optimized ones. Without configured groups the one group never
 * changes, so active/optimized is its only supported state; configured
 * groups may be given any state. */
enum scsi_action spc_report_tpgs(struct scsi_lu *lu, struct scsi_task *task,
                                 const struct scsi_args *a)
{
    spd_port_group g[SPD_PORT_GROUPS_MAX];
    pthread_mutex_lock(&lu->nexus_lock);
    unsigned count = groups_copy(lu->params, g);
    pthread_mutex_unlock(&lu->nexus_lock);
    uint8_t supported = lu->params->port_group_count
                        ? 0x0f : 0x01;  /* U_SUP, S_SUP, AN_SUP; AO_SUP */
    bool extended = (a->cdb[1] >> 5) == 0x01;   /* PARAMETER DATA FORMAT */
    uint8_t buf[8 + SPD_PORT_GROUPS_MAX * TPG_DESC_LEN];
    size_t n = extended ? 8 : 4;

    memset(buf, 0, n);
    for (unsigned i = 0; i < count; i++, n += TPG_DESC_LEN) {
        uint8_t *d = buf + n;
        memset(d, 0, TPG_DESC_LEN);
        d[0] = (uint8_t)((g[i].state == SPD_ALUA_OPTIMIZED ? 0x80 : 0) |
                         g[i].state);           /* PREF, ASYMMETRIC STATE */
        d[1] = supported;
        put_be16(d + 2, g[i].id);
        d[7] = 1;                               /* TARGET PORT COUNT */
        put_be16(d + 10, g[i].id);              /* RELATIVE TARGET PORT ID */
    }
    put_be32(buf, (uint32_t)(n - 4));
    if (extended)
        buf[4] = 0x10;                          /* FORMAT TYPE 001b */
    return scsi_reply(task, buf, n, a->count);
}
