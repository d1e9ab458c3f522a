/*
 * crc.h - the two CRC-32s libspd needs: the IEEE one (zlib, GPT headers
 * and entries) and Castagnoli's CRC-32C (iSCSI header and data digests).
 *
 * Both follow zlib's convention: the register is inverted on the way in
 * and out, so crc(0, ...) starts a fresh sum and a sum can be continued
 * over more data: crc(crc(0, a, n), b, m) == crc(0, a||b, n + m).
 */
#ifndef SPD_CRC_H
#define SPD_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (reflected polynomial 0xEDB88320). */
uint32_t crc32_ieee(uint32_t crc, const void *buf, size_t len)
    __attribute__((visibility("hidden")));

/* CRC-32C (reflected polynomial 0x82F63B78); SSE4.2 where the CPU has it. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
    __attribute__((visibility("hidden")));

#endif
