/* Frame header decode/encode. */
#include "fastws_frame.h"

#include <string.h>

int fws_header_decode(const uint8_t *buf, size_t n, fws_header *h)
{
    if (n < 2)
        return 0;
    const unsigned b0 = buf[0], b1 = buf[1];
    const int masked = (int)(b1 >> 7);
    uint64_t len = b1 & 0x7fu;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = ((uint64_t)buf[2] << 8) | buf[3];
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        if (buf[2] & 0x80u)
            return -1;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = (len << 8) | buf[i];
        hl = 10;
    }
    if (masked) {
        if (n < hl + 4)
            return 0;
        memcpy(h->mask, buf + hl, 4);
        hl += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->fin = (int)(b0 >> 7);
    h->rsv = (b0 >> 4) & 7u;
    h->opcode = b0 & 0x0fu;
    h->masked = masked;
    h->length = len;
    h->header_len = hl;
    return (int)hl;
}

size_t fws_header_encode(uint8_t out[14], int fin, unsigned rsv, unsigned opcode,
                         uint64_t length, const uint8_t *mask)
{
    out[0] = (uint8_t)((fin ? 0x80u : 0u) | ((rsv & 7u) << 4) | (opcode & 0x0fu));
    const uint8_t mbit = mask ? 0x80u : 0u;
    size_t hl;
    if (length < 126) {
        out[1] = (uint8_t)(mbit | length);
        hl = 2;
    } else if (length <= 0xffffu) {
        out[1] = (uint8_t)(mbit | 126u);
        out[2] = (uint8_t)(length >> 8);
        out[3] = (uint8_t)length;
        hl = 4;
    } else {
        out[1] = (uint8_t)(mbit | 127u);
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(length >> (56 - 8 * i));
        hl = 10;
    }
    if (mask) {
        memcpy(out + hl, mask, 4);
        hl += 4;
    }
    return hl;
}
