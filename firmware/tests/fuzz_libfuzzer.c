/*
 * fuzz_libfuzzer.c - libFuzzer entry point for the same parser/command code (coverage-guided,
 * beside the random tests/fuzz_parser.c). `make test` builds it with clang (Debian: clang,
 * libclang-rt-dev) and tests/test_native.py runs it for LIBFUZZ_SECONDS (20 s) on a corpus seeded
 * from tests/vectors.json (build/libfuzzer_corpus, kept between runs); by hand:
 *
 *   make -C firmware libfuzz LIBFUZZ_SECONDS=600
 *
 * The first input byte selects the clock step per byte, so timeouts get fuzzed too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../core/pt_app.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_app_t app;
    uint8_t reply[PT_MAX_FRAME];
    uint32_t now = 0;
    if (size == 0)
        return 0;
    uint8_t step = data[0];
    pt_app_init(&app, 0, 0);
    for (size_t i = 1; i < size; i++) {
        now += step & 0x3Fu;
        size_t n = pt_app_rx_byte(&app, data[i], now, reply, sizeof reply);
        if (n > PT_MAX_FRAME || app.hang_requested)
            abort();
        pt_app_tick(&app, now);
        for (uint8_t a = 0; a < 2; a++) {
            uint16_t us = pt_app_pulse_us(&app, a);
            if (us < PT_PULSE_MIN_US || us > PT_PULSE_MAX_US)
                abort();
            if (app.axis[a].target_cdeg < app.axis[a].min_cdeg || app.axis[a].target_cdeg > app.axis[a].max_cdeg)
                abort();
        }
    }
    return 0;
}
