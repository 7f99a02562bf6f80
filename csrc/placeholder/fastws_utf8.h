/* Stand-in for the UTF-8 validator API, used by the build only until the
 * real csrc/fastws_utf8.h and csrc/utf8*.c exist. Same declarations. */
#ifndef FASTWS_UTF8_H
#define FASTWS_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t state;
    uint32_t pending;
    uint64_t total;
    uint64_t seq_start;
} fws_utf8_state;

void fws_utf8_init(fws_utf8_state *st);
int fws_utf8_feed(fws_utf8_state *st, const uint8_t *p, size_t n, uint64_t *err_pos);
int fws_utf8_finish(const fws_utf8_state *st, uint64_t *err_pos);
int fws_utf8_validate(const uint8_t *p, size_t n, size_t *err_pos);
const char *fws_utf8_isa(void);

#ifdef __cplusplus
}
#endif

#endif /* FASTWS_UTF8_H */
