/* WebSocket frame header decode/encode (RFC 6455 section 5.2).
 * Plain C11, no Python.h. No protocol checks: reserved opcodes, RSV bits,
 * control-frame limits and non-minimal lengths are the caller's business. */
#ifndef FASTWS_FRAME_H
#define FASTWS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int fin;           /* 0 or 1 */
    unsigned rsv;      /* RSV1=4, RSV2=2, RSV3=1 */
    unsigned opcode;   /* 0..15 */
    int masked;        /* 0 or 1 */
    uint8_t mask[4];   /* valid when masked */
    uint64_t length;   /* payload length, < 2**63 */
    size_t header_len; /* 2..14 */
} fws_header;

/* >0: header length (h filled); 0: need more bytes (h untouched);
 * -1: 64-bit length with its most significant bit set. */
int fws_header_decode(const uint8_t *buf, size_t n, fws_header *h);

/* Writes the 2..14 byte header with minimal length encoding and returns its
 * length. length must be < 2**63, opcode <= 15, rsv <= 7 (higher bits are
 * ignored); mask is NULL or 4 bytes. */
size_t fws_header_encode(uint8_t out[14], int fin, unsigned rsv, unsigned opcode,
                         uint64_t length, const uint8_t *mask);

#ifdef __cplusplus
}
#endif

#endif /* FASTWS_FRAME_H */
