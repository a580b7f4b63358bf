/*
 * test_core.c - host unit tests of the protocol core (framing, CRC, commands, slew, limits,
 * failsafe). Built with -fsanitize=address,undefined by `make test`; built twice, with and without
 * PT_ENABLE_DEBUG_CMDS, because the debug command must not exist in the release image.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/pt_app.h"
#include "../core/pt_proto.h"

static int failures, checks;
#define CHECK(cond)                                                                    \
    do {                                                                               \
        checks++;                                                                      \
        if (!(cond)) {                                                                 \
            failures++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                              \
    } while (0)

/* Send a command frame to app; return the reply decoded into *rsp (type 0 when none). */
static void transact(pt_app_t *app, uint8_t type, uint8_t seq, const uint8_t *pl, uint8_t len,
                     uint32_t now, pt_frame_t *rsp)
{
    uint8_t frame[PT_MAX_FRAME], reply[PT_MAX_FRAME];
    size_t n = pt_encode(frame, sizeof frame, type, seq, pl, len);
    memset(rsp, 0, sizeof *rsp);
    for (size_t i = 0; i < n; i++) {
        size_t r = pt_app_rx_byte(app, frame[i], now, reply, sizeof reply);
        if (r) {
            pt_parser_t p;
            pt_parser_reset(&p);
            pt_parse_result_t res = PT_PARSE_NONE;
            for (size_t k = 0; k < r; k++)
                res = pt_parser_feed(&p, reply[k], rsp);
            CHECK(res == PT_PARSE_FRAME);
            CHECK(i == n - 1); /* replies come only at the end of a frame */
        }
    }
}

static void set_target(pt_app_t *app, int16_t pan, int16_t tilt, uint16_t speed, uint32_t now, pt_frame_t *rsp)
{
    uint8_t pl[6];
    pt_put_i16(&pl[0], pan);
    pt_put_i16(&pl[2], tilt);
    pt_put_u16(&pl[4], speed);
    transact(app, PT_CMD_SET_TARGET, 1, pl, 6, now, rsp);
}

static void test_crc(void)
{
    const uint8_t check[] = "123456789";
    CHECK(pt_crc16(check, 9, 0xFFFF) == 0x29B1); /* CRC-16/CCITT-FALSE check value */
    CHECK(pt_crc16(check, 0, 0xFFFF) == 0xFFFF);
}

static void test_framing(void)
{
    uint8_t buf[PT_MAX_FRAME];
    const uint8_t pl[3] = {1, 2, 3};
    size_t n = pt_encode(buf, sizeof buf, 0x02, 9, pl, 3);
    CHECK(n == 9 && buf[0] == PT_START && buf[1] == 3 && buf[2] == 2 && buf[3] == 9);
    CHECK(pt_encode(buf, 5, 0x02, 9, pl, 3) == 0);                /* too small */
    CHECK(pt_encode(buf, sizeof buf, 1, 0, pl, PT_MAX_PAYLOAD + 1) == 0); /* too long */

    /* garbage (including a fake START with an impossible length) before a frame is skipped */
    pt_parser_t p;
    pt_parser_reset(&p);
    pt_frame_t f;
    const uint8_t junk[] = {0x00, 0xFF, PT_START, 0xF0, 0x13};
    int lenerr = 0;
    for (size_t i = 0; i < sizeof junk; i++)
        lenerr += pt_parser_feed(&p, junk[i], &f) == PT_PARSE_ERR_LENGTH;
    CHECK(lenerr == 1);
    pt_parse_result_t r = PT_PARSE_NONE;
    for (size_t i = 0; i < n; i++)
        r = pt_parser_feed(&p, buf[i], &f);
    CHECK(r == PT_PARSE_FRAME && f.type == 2 && f.seq == 9 && f.len == 3 && f.payload[2] == 3);

    /* every single-bit error in the frame body is detected */
    int undetected = 0;
    for (size_t bit = 8; bit < n * 8; bit++) {
        uint8_t bad[PT_MAX_FRAME];
        memcpy(bad, buf, n);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pt_parser_reset(&p);
        pt_parse_result_t rr = PT_PARSE_NONE;
        for (size_t i = 0; i < n; i++) {
            rr = pt_parser_feed(&p, bad[i], &f);
            if (rr != PT_PARSE_NONE)
                break;
        }
        undetected += rr == PT_PARSE_FRAME;
    }
    CHECK(undetected == 0);

    /* zero-length frame */
    n = pt_encode(buf, sizeof buf, PT_CMD_PING, 200, NULL, 0);
    CHECK(n == PT_OVERHEAD);
    pt_parser_reset(&p);
    for (size_t i = 0; i < n; i++)
        r = pt_parser_feed(&p, buf[i], &f);
    CHECK(r == PT_PARSE_FRAME && f.len == 0 && f.seq == 200);
}

static void test_ping_and_errors(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, 0);
    transact(&app, PT_CMD_PING, 42, NULL, 0, 10, &rsp);
    CHECK(rsp.type == PT_RSP_ACK && rsp.seq == 42 && rsp.len == 1 && rsp.payload[0] == PT_CMD_PING);
    CHECK(app.flags & PT_FLAG_HOST_SEEN);

    transact(&app, 0x33, 5, NULL, 0, 20, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.seq == 5 && rsp.payload[0] == 0x33 && rsp.payload[1] == PT_E_UNKNOWN_CMD);

    const uint8_t two[2] = {0, 0};
    transact(&app, PT_CMD_SET_TARGET, 6, two, 2, 30, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.payload[1] == PT_E_LENGTH);
    CHECK(app.frame_errors == 2);

    /* bad CRC: NACK with code CRC, counted */
    uint8_t frame[PT_MAX_FRAME], reply[PT_MAX_FRAME];
    size_t n = pt_encode(frame, sizeof frame, PT_CMD_PING, 77, NULL, 0);
    frame[n - 1] ^= 0x5A;
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        r = pt_app_rx_byte(&app, frame[i], 40, reply, sizeof reply);
    CHECK(r > 0 && reply[2] == PT_RSP_NACK && reply[3] == 77 && reply[5] == PT_E_CRC);
    CHECK(app.crc_errors == 1);

#ifdef PT_ENABLE_DEBUG_CMDS
    transact(&app, PT_CMD_DEBUG_HANG, 8, NULL, 0, 50, &rsp);
    CHECK(rsp.type == PT_RSP_ACK && app.hang_requested == 1);
#else
    transact(&app, PT_CMD_DEBUG_HANG, 8, NULL, 0, 50, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.payload[1] == PT_E_UNKNOWN_CMD && app.hang_requested == 0);
#endif
}

static void test_stalled_frame_dropped(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, 0);
    uint8_t reply[PT_MAX_FRAME];
    /* half a frame, then silence longer than the inter-byte timeout, then a whole frame */
    CHECK(pt_app_rx_byte(&app, PT_START, 100, reply, sizeof reply) == 0);
    CHECK(pt_app_rx_byte(&app, 6, 101, reply, sizeof reply) == 0);
    transact(&app, PT_CMD_PING, 3, NULL, 0, 101 + PT_RX_TIMEOUT_MS + 1, &rsp);
    CHECK(rsp.type == PT_RSP_ACK && rsp.seq == 3);
    CHECK(app.frame_errors == 1);
}

static void test_pulse_mapping(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, 0);
    CHECK(pt_app_pulse_us(&app, 0) == 1500 && pt_app_pulse_us(&app, 1) == 1500);
    set_target(&app, 9000, -9000, 0, 0, &rsp);
    CHECK(rsp.type == PT_RSP_ACK);
    pt_app_tick(&app, 100); /* 300 deg/s * 100 ms = 30 deg */
    CHECK(pt_app_pos_cdeg(&app, 0) == 3000 && pt_app_pos_cdeg(&app, 1) == -3000);
    for (uint32_t t = 120; t <= 1000; t += 20)
        pt_app_tick(&app, t);
    CHECK(pt_app_pulse_us(&app, 0) == 2500 && pt_app_pulse_us(&app, 1) == 500);
    set_target(&app, 4500, 1000, 0, 1000, &rsp);
    for (uint32_t t = 1020; t <= 2000; t += 20)
        pt_app_tick(&app, t);
    CHECK(pt_app_pulse_us(&app, 0) == 2000);
    CHECK(pt_app_pulse_us(&app, 1) == 1611); /* 10 deg * 1000/90 = 111.1 us */
}

static void test_slew_rate(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, 0);
    uint8_t pl[4];
    pt_put_u16(&pl[0], 9000); /* 90 deg/s */
    pt_put_u16(&pl[2], 500);
    transact(&app, PT_CMD_SET_SPEED, 2, pl, 4, 0, &rsp);
    CHECK(rsp.type == PT_RSP_ACK);
    set_target(&app, 4500, 0, 0, 0, &rsp);
    pt_app_tick(&app, 20);
    CHECK(pt_app_pos_cdeg(&app, 0) == 180);
    CHECK(app.flags & PT_FLAG_MOVING);
    pt_app_tick(&app, 400); /* a 380 ms stall counts as PT_MAX_TICK_MS */
    CHECK(pt_app_pos_cdeg(&app, 0) == 180 + 900);
    /* the per-move speed can only slow down */
    set_target(&app, -4500, 0, 60000, 5000, &rsp);
    CHECK(app.move_speed_cdeg_s == 9000);
    set_target(&app, -4500, 0, 1000, 5000, &rsp);
    CHECK(app.move_speed_cdeg_s == 1000);
    /* failsafe timeout bounds */
    pt_put_u16(&pl[2], 10);
    transact(&app, PT_CMD_SET_SPEED, 3, pl, 4, 5000, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.payload[1] == PT_E_BAD_ARG);
    CHECK(app.failsafe_ms == 500);
}

static void test_limits_and_clamp(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, 0);
    uint8_t pl[8];
    pt_put_i16(&pl[0], -4000);
    pt_put_i16(&pl[2], 4000);
    pt_put_i16(&pl[4], -2000);
    pt_put_i16(&pl[6], 3000);
    transact(&app, PT_CMD_SET_LIMITS, 4, pl, 8, 0, &rsp);
    CHECK(rsp.type == PT_RSP_ACK);
    set_target(&app, 6000, -2500, 0, 0, &rsp);
    CHECK(rsp.type == PT_RSP_ACK);
    CHECK(app.axis[0].target_cdeg == 4000 && app.axis[1].target_cdeg == -2000);
    CHECK(app.flags & PT_FLAG_CLAMPED);
    set_target(&app, 100, 100, 0, 0, &rsp);
    CHECK(!(app.flags & PT_FLAG_CLAMPED));
    /* beyond the servo's travel: refused, target unchanged */
    set_target(&app, 9001, 0, 0, 0, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.payload[1] == PT_E_RANGE);
    CHECK(app.axis[0].target_cdeg == 100);
    set_target(&app, 0, -32768, 0, 0, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.payload[1] == PT_E_RANGE);
    /* inconsistent limits refused, old limits kept */
    pt_put_i16(&pl[0], 500);
    pt_put_i16(&pl[2], 500);
    transact(&app, PT_CMD_SET_LIMITS, 5, pl, 8, 0, &rsp);
    CHECK(rsp.type == PT_RSP_NACK && rsp.payload[1] == PT_E_BAD_ARG);
    CHECK(app.axis[0].min_cdeg == -4000);
    pt_put_i16(&pl[0], -9500);
    pt_put_i16(&pl[2], 0);
    transact(&app, PT_CMD_SET_LIMITS, 6, pl, 8, 0, &rsp);
    CHECK(rsp.type == PT_RSP_NACK);
    /* narrowing limits pulls the current target inside */
    pt_put_i16(&pl[0], -50);
    pt_put_i16(&pl[2], 50);
    transact(&app, PT_CMD_SET_LIMITS, 7, pl, 8, 0, &rsp);
    CHECK(rsp.type == PT_RSP_ACK && app.axis[0].target_cdeg == 50);
}

static void test_failsafe(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, 0);
    CHECK(app.flags & PT_FLAG_FAILSAFE); /* at boot, before any host */
    set_target(&app, 3000, 2000, 0, 0, &rsp);
    CHECK(!(app.flags & PT_FLAG_FAILSAFE));
    uint32_t t;
    for (t = 20; t <= PT_DEFAULT_FAILSAFE_MS; t += 20)
        pt_app_tick(&app, t);
    CHECK(!(app.flags & PT_FLAG_FAILSAFE) && pt_app_pos_cdeg(&app, 0) == 3000);
    for (; t <= PT_DEFAULT_FAILSAFE_MS + 1000; t += 20)
        pt_app_tick(&app, t);
    CHECK(app.flags & PT_FLAG_FAILSAFE);
    CHECK(pt_app_pos_cdeg(&app, 0) == 0 && pt_app_pos_cdeg(&app, 1) == 0);
    /* pings keep it alive */
    set_target(&app, 1000, 0, 0, t, &rsp);
    for (uint32_t k = 0; k < 20; k++) {
        t += 200;
        transact(&app, PT_CMD_PING, 1, NULL, 0, t, &rsp);
        pt_app_tick(&app, t);
    }
    CHECK(!(app.flags & PT_FLAG_FAILSAFE) && pt_app_pos_cdeg(&app, 0) == 1000);
    /* a safe pose outside the limits becomes the nearest limit */
    pt_app_set_limits(&app, 1000, 2000, -9000, 9000, t);
    for (uint32_t k = 0; k < 200; k++)
        pt_app_tick(&app, t += 20);
    CHECK(app.flags & PT_FLAG_FAILSAFE);
    CHECK(pt_app_pos_cdeg(&app, 0) == 1000);
}

static void test_status(void)
{
    pt_app_t app;
    pt_frame_t rsp;
    pt_app_init(&app, 0, PT_RESET_WDRF);
    set_target(&app, -1234, 567, 0, 0, &rsp);
    pt_app_tick(&app, 100);
    transact(&app, PT_CMD_GET_STATUS, 11, NULL, 0, 123456, &rsp);
    CHECK(rsp.type == PT_RSP_STATUS && rsp.seq == 11 && rsp.len == PT_STATUS_LEN);
    CHECK(pt_get_i16(&rsp.payload[0]) == -1234 && pt_get_i16(&rsp.payload[2]) == 567);
    CHECK(pt_get_i16(&rsp.payload[4]) == -1234 && pt_get_i16(&rsp.payload[6]) == 567);
    CHECK(rsp.payload[8] & PT_FLAG_WDT_RESET);
    CHECK(rsp.payload[9] == PT_RESET_WDRF);
    CHECK(rsp.payload[10] == (123456 & 0xFF) && rsp.payload[12] == 1);
}

int main(void)
{
    test_crc();
    test_framing();
    test_ping_and_errors();
    test_stalled_frame_dropped();
    test_pulse_mapping();
    test_slew_rate();
    test_limits_and_clamp();
    test_failsafe();
    test_status();
    printf("test_core%s: %d checks, %d failures\n",
#ifdef PT_ENABLE_DEBUG_CMDS
           " (debug build)",
#else
           " (release build)",
#endif
           checks, failures);
    return failures ? 1 : 0;
}
