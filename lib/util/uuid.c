/* uuid.c - parsing, formatting and generating unit UUIDs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util/bytes.h"
#include "util/errmsg.h"
#include "spd/spd.h"

int spd_uuid_parse(const char *text, uint8_t uuid[16])
{
    /* 8-4-4-4-12 hex digits: dashes sit at these offsets. */
    static const unsigned dash[] = { 8, 13, 18, 23 };
    uint8_t out[16];
    unsigned pos = 0, d = 0;

    if (!text || strlen(text) != 36)
        goto bad;
    for (unsigned i = 0; i < 16; i++) {
        if (d < 4 && pos == dash[d]) {
            if (text[pos++] != '-')
                goto bad;
            d++;
        }
        int hi = hex_digit(text[pos]), lo = hex_digit(text[pos + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        out[i] = (uint8_t)(hi << 4 | lo);
        pos += 2;
    }
    memcpy(uuid, out, 16);
    return 0;
bad:
    return spd_set_error(EINVAL, "'%s' is not a UUID "
                         "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                         text ? text : "(null)");
}

void spd_uuid_format(const uint8_t uuid[16], char text[37])
{
    snprintf(text, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6],
             uuid[7], uuid[8], uuid[9], uuid[10], uuid[11], uuid[12],
             uuid[13], uuid[14], uuid[15]);
}

int spd_uuid_generate(uint8_t uuid[16])
{
    if (getrandom(uuid, 16, 0) != 16)
        return spd_set_error(errno ? errno : EIO, "getrandom: %s",
                             strerror(errno));
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* version 4 */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    return 0;
}
