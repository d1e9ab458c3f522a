/* version.c - spd_version(): the library's own version, at run time. */
#include "spd/spd.h"

const char *spd_version(void)
{
    return SPD_VERSION_STRING;
}
