/* Byte-at-a-time UTF-8 validator standing in for csrc/utf8*.c until they
 * exist. state = bytes still needed | lo << 8 | hi << 16 (next byte range). */
#include "fastws_utf8.h"
#include "../fastws_cpu.h"

#include <string.h>

void fws_utf8_init(fws_utf8_state *st) { memset(st, 0, sizeof *st); }

static uint32_t lead(uint8_t b)
{
    if (b >= 0xc2 && b <= 0xdf) return 1u | 0x80u << 8 | 0xbfu << 16;
    if (b == 0xe0) return 2u | 0xa0u << 8 | 0xbfu << 16;
    if (b == 0xed) return 2u | 0x80u << 8 | 0x9fu << 16;
    if (b >= 0xe1 && b <= 0xef) return 2u | 0x80u << 8 | 0xbfu << 16;
    if (b == 0xf0) return 3u | 0x90u << 8 | 0xbfu << 16;
    if (b >= 0xf1 && b <= 0xf3) return 3u | 0x80u << 8 | 0xbfu << 16;
    if (b == 0xf4) return 3u | 0x80u << 8 | 0x8fu << 16;
    return 0xffu;
}

int fws_utf8_feed(fws_utf8_state *st, const uint8_t *p, size_t n, uint64_t *err_pos)
{
    uint32_t s = st->state;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if ((s & 0xffu) == 0) {
            if (b < 0x80)
                continue;
            s = lead(b);
            if (s == 0xffu) {
                if (err_pos) *err_pos = st->total + i;
                st->state = 0;
                return 1;
            }
            st->seq_start = st->total + i;
        } else {
            if (b < ((s >> 8) & 0xffu) || b > (s >> 16)) {
                if (err_pos) *err_pos = st->seq_start;
                return 1;
            }
            s = (s & 0xffu) - 1u;
            if (s)
                s |= 0x80u << 8 | 0xbfu << 16;
        }
    }
    st->state = s;
    st->total += n;
    return 0;
}

int fws_utf8_finish(const fws_utf8_state *st, uint64_t *err_pos)
{
    if ((st->state & 0xffu) == 0)
        return 0;
    if (err_pos) *err_pos = st->seq_start;
    return 1;
}

int fws_utf8_validate(const uint8_t *p, size_t n, size_t *err_pos)
{
    fws_utf8_state st;
    uint64_t e = 0;
    fws_utf8_init(&st);
    if (fws_utf8_feed(&st, p, n, &e) || fws_utf8_finish(&st, &e)) {
        if (err_pos) *err_pos = (size_t)e;
        return 1;
    }
    return 0;
}

const char *fws_utf8_isa(void) { return "scalar"; }

int fws_utf8_set_isa(const char *name)
{
    return (name && (strcmp(name, "scalar") == 0 || strcmp(name, "auto") == 0)) ? 0 : -1;
}
