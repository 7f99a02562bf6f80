/* UTF-8 scanner, avx2 build.  Placeholder until the vector kernel lands:
 * forwards to the scalar scanner so that dispatch and linking work. */
#include "fastws_utf8.h"

#ifdef FWS_UTF8_X86_64
size_t fws_utf8_scan_avx2(const uint8_t *p, size_t n)
{
    return fws_utf8_scan_scalar(p, n);
}
#endif
