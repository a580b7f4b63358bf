/*
 * failsafe_fuzz.c - failsafe timing under fuzzed input (host build, ASan+UBSan).
 *
 * Random garbage (random bytes, bursts of START bytes, truncated frames, frames with a broken CRC,
 * over-long LEN) is interleaved with valid SET_TARGET commands, byte by byte on a simulated
 * millisecond clock, with pt_app_tick() after every byte and every millisecond of silence (the
 * firmware's main loop ticks far more often than the 20 ms pt_app.h asks for). The oracle is what
 * the host can see: a command counts as valid when the board answers it with ACK, STATUS or a
 * NACK other than CRC / LENGTH / UNKNOWN_CMD (PROTOCOL.md: "valid command"). Checked per trial:
 *   - valid commands still get through: every SET_TARGET is ACKed within 2 attempts when the host
 *     retries after a pause longer than PT_RX_TIMEOUT_MS (what robot_tracker does);
 *   - the failsafe is never early: FAILSAFE is not raised while the last valid command is at most
 *     failsafe_ms old;
 *   - the failsafe is on time under garbage: once the last valid command is more than
 *     failsafe_ms + MARGIN_MS old, FAILSAFE is set and both axes are commanded to the safe pose
 *     (0 deg clamped to the limits), and (speed 0: no slew) the pulses are at the safe pose.
 *
 *   build/failsafe_fuzz [trials] [seed]      prints "N trials, ... no finding" or the first failure
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/pt_app.h"

#define MARGIN_MS 2u /* one tick of this loop (1 ms) plus the strict '>' of the failsafe rule */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }

typedef struct {
    pt_app_t app;
    uint32_t now;
    uint32_t last_valid; /* oracle: time of the last reply that proves a valid command */
    int have_valid;
    int was_failsafe; /* FAILSAFE at the previous check (the board boots with it set) */
    uint32_t trial;
} sim_t;

static unsigned long checks;

static void fail(const sim_t *s, const char *what)
{
    printf("FAIL trial %u at t=%u ms: %s (last valid command at %u ms, failsafe_ms %u, flags 0x%02x, "
           "targets %d/%d)\n",
           s->trial, s->now, what, s->last_valid, s->app.failsafe_ms, s->app.flags,
           s->app.axis[0].target_cdeg, s->app.axis[1].target_cdeg);
    exit(1);
}

static int16_t safe_target(const pt_axis_t *a)
{
    return a->min_cdeg > 0 ? a->min_cdeg : (a->max_cdeg < 0 ? a->max_cdeg : 0);
}

/* The invariants, checked after every byte and tick. */
static void check(sim_t *s)
{
    checks++;
    uint32_t age = s->now - s->last_valid;
    int failsafe = (s->app.flags & PT_FLAG_FAILSAFE) != 0;
    int raised = failsafe && !s->was_failsafe;
    s->was_failsafe = failsafe;
    if (!s->have_valid)
        return; /* boots in failsafe: nothing to time */
    if (raised && age <= s->app.failsafe_ms)
        fail(s, "FAILSAFE raised early");
    if (age > (uint32_t)s->app.failsafe_ms + MARGIN_MS) {
        if (!failsafe)
            fail(s, "FAILSAFE late: still not raised");
        for (uint8_t a = 0; a < 2; a++)
            if (s->app.axis[a].target_cdeg != safe_target(&s->app.axis[a]))
                fail(s, "failsafe target is not the safe pose");
    }
}

/* Did this reply prove a valid command? */
static int reply_is_valid(const uint8_t *r, size_t n)
{
    if (n < PT_OVERHEAD)
        return 0;
    if (r[2] == PT_RSP_ACK || r[2] == PT_RSP_STATUS)
        return 1;
    if (r[2] == PT_RSP_NACK && r[1] >= 2)
        return r[5] == PT_E_RANGE || r[5] == PT_E_BAD_ARG;
    return 0;
}

/* Feed one byte at the current time; returns 1 if its reply was an ACK. */
static int feed(sim_t *s, uint8_t byte)
{
    uint8_t reply[PT_MAX_FRAME];
    size_t n = pt_app_rx_byte(&s->app, byte, s->now, reply, sizeof reply);
    if (n > PT_MAX_FRAME)
        fail(s, "reply longer than a frame");
    if (reply_is_valid(reply, n)) {
        s->last_valid = s->now;
        s->have_valid = 1;
    }
    pt_app_tick(&s->app, s->now);
    check(s);
    return n >= PT_OVERHEAD && reply[2] == PT_RSP_ACK;
}

static void wait_ms(sim_t *s, uint32_t ms)
{
    for (uint32_t i = 0; i < ms; i++) {
        s->now++;
        pt_app_tick(&s->app, s->now);
        check(s);
    }
}

static void garbage(sim_t *s, uint32_t nbytes)
{
    uint8_t frame[PT_MAX_FRAME];
    uint32_t i = 0;
    while (i < nbytes) {
        size_t n = 0;
        switch (rnd_below(6)) {
        case 0: /* random bytes */
            n = 1 + rnd_below(16);
            for (size_t k = 0; k < n; k++)
                frame[k] = (uint8_t)rnd();
            break;
        case 1: /* START bursts */
            n = 1 + rnd_below(6);
            memset(frame, PT_START, n);
            break;
        case 2: /* a valid-looking frame with a broken CRC */
        case 3: { /* ... or cut short */
            uint8_t payload[PT_MAX_PAYLOAD];
            uint8_t len = (uint8_t)rnd_below(PT_MAX_PAYLOAD + 1);
            for (uint8_t k = 0; k < len; k++)
                payload[k] = (uint8_t)rnd();
            n = pt_encode(frame, sizeof frame, (uint8_t)(1 + rnd_below(5)), (uint8_t)rnd(), payload, len);
            frame[n - 1 - rnd_below(2)] ^= (uint8_t)(1u + rnd_below(255));
            if (rnd_below(2))
                n = 1 + rnd_below(n - 1);
            break;
        }
        case 4: /* over-long LEN */
            frame[0] = PT_START;
            frame[1] = (uint8_t)(PT_MAX_PAYLOAD + 1 + rnd_below(256 - PT_MAX_PAYLOAD - 1));
            n = 2;
            break;
        default: /* a header that promises a full payload, then stops */
            frame[0] = PT_START;
            frame[1] = PT_MAX_PAYLOAD;
            frame[2] = PT_CMD_SET_LIMITS;
            n = 3;
            break;
        }
        for (size_t k = 0; k < n && i < nbytes; k++, i++) {
            feed(s, frame[k]);
            wait_ms(s, rnd_below(4)); /* 0..3 ms between bytes: stalls included */
        }
    }
}

/* One SET_TARGET with the host's retry rule; returns the attempts it took (0: never ACKed). */
static int send_target(sim_t *s, uint8_t seq)
{
    uint8_t payload[6], frame[PT_MAX_FRAME];
    int16_t pan = (int16_t)((int32_t)rnd_below(16001) - 8000);
    int16_t tilt = (int16_t)((int32_t)rnd_below(16001) - 8000);
    if (pan == 0)
        pan = 100; /* never the safe pose, so the failsafe check can see the difference */
    payload[0] = (uint8_t)pan, payload[1] = (uint8_t)((uint16_t)pan >> 8);
    payload[2] = (uint8_t)tilt, payload[3] = (uint8_t)((uint16_t)tilt >> 8);
    payload[4] = payload[5] = 0;
    size_t n = pt_encode(frame, sizeof frame, PT_CMD_SET_TARGET, seq, payload, 6);
    for (int attempt = 1; attempt <= 2; attempt++) {
        int acked = 0;
        for (size_t k = 0; k < n; k++) {
            acked |= feed(s, frame[k]);
            wait_ms(s, rnd_below(2));
        }
        if (acked) {
            if (s->app.flags & PT_FLAG_FAILSAFE)
                fail(s, "FAILSAFE still set after an ACKed SET_TARGET");
            return attempt;
        }
        wait_ms(s, PT_RX_TIMEOUT_MS + 10); /* the host's ACK timeout, then a retry */
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long trials = argc > 1 ? strtoul(argv[1], NULL, 10) : 3000;
    if (argc > 2)
        rng ^= strtoull(argv[2], NULL, 10) * 0x2545F4914F6CDD1Dull;
    unsigned long commands = 0, retried = 0, fired = 0;
    static sim_t s;
    for (uint32_t t = 0; t < trials; t++) {
        memset(&s, 0, sizeof s);
        s.trial = t;
        s.now = rnd_below(1000);
        pt_app_init(&s.app, s.now, 0);
        s.was_failsafe = (s.app.flags & PT_FLAG_FAILSAFE) != 0;
        /* speed 0 (no slew), a random failsafe timeout */
        uint16_t failsafe_ms = (uint16_t)(PT_MIN_FAILSAFE_MS + rnd_below(1500));
        uint8_t payload[4] = {0, 0, (uint8_t)failsafe_ms, (uint8_t)(failsafe_ms >> 8)};
        uint8_t frame[PT_MAX_FRAME];
        size_t n = pt_encode(frame, sizeof frame, PT_CMD_SET_SPEED, 1, payload, 4);
        garbage(&s, rnd_below(64));
        wait_ms(&s, PT_RX_TIMEOUT_MS + 1);
        int acked = 0;
        for (size_t k = 0; k < n; k++)
            acked |= feed(&s, frame[k]);
        if (!acked || s.app.failsafe_ms != failsafe_ms)
            fail(&s, "SET_SPEED after a pause was not accepted");
        uint32_t cmds = 1 + rnd_below(8);
        for (uint32_t c = 0; c < cmds; c++) {
            garbage(&s, rnd_below(120));
            if (rnd_below(2))
                wait_ms(&s, rnd_below(3 * PT_RX_TIMEOUT_MS));
            int attempts = send_target(&s, (uint8_t)(c + 2));
            if (attempts == 0)
                fail(&s, "a valid SET_TARGET was not ACKed within 2 attempts");
            commands++;
            retried += attempts > 1;
        }
        /* the host goes silent; garbage keeps coming until well past the failsafe */
        uint32_t end = s.last_valid + failsafe_ms + 300;
        while ((int32_t)(end - s.now) > 0) {
            garbage(&s, 1 + rnd_below(40));
            wait_ms(&s, rnd_below(20));
        }
        if (!(s.app.flags & PT_FLAG_FAILSAFE))
            fail(&s, "no failsafe after the host went silent");
        for (uint8_t a = 0; a < 2; a++) {
            int32_t want = 1500 + (int32_t)safe_target(&s.app.axis[a]) * 1000 / 9000;
            int32_t got = pt_app_pulse_us(&s.app, a);
            if (got < want - 1 || got > want + 1)
                fail(&s, "pulse not at the safe pose after the failsafe");
        }
        fired++;
    }
    printf("failsafe under fuzzed input: %lu trials, %lu valid commands (%lu needed the retry), "
           "%lu failsafes on time (margin %u ms), %lu checks, no finding\n",
           trials, commands, retried, fired, MARGIN_MS, checks);
    return 0;
}
