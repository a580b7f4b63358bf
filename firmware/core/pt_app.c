/* pt_app.c - board behaviour; see pt_app.h and ../PROTOCOL.md. */
#include "pt_app.h"

#include <string.h>

static int16_t clamp16(int16_t v, int16_t lo, int16_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Failsafe pose: straight ahead, kept inside the configured limits. */
static void command_safe_pose(pt_app_t *app)
{
    for (uint8_t i = 0; i < 2; i++) {
        pt_axis_t *a = &app->axis[i];
        a->target_cdeg = clamp16(0, a->min_cdeg, a->max_cdeg);
    }
    app->move_speed_cdeg_s = app->speed_cdeg_s;
}

void pt_app_init(pt_app_t *app, uint32_t now_ms, uint8_t reset_cause)
{
    memset(app, 0, sizeof(*app));
    for (uint8_t i = 0; i < 2; i++) {
        app->axis[i].min_cdeg = -PT_ABS_LIMIT_CDEG;
        app->axis[i].max_cdeg = PT_ABS_LIMIT_CDEG;
    }
    app->speed_cdeg_s = PT_DEFAULT_SPEED_CDEG_S;
    app->move_speed_cdeg_s = PT_DEFAULT_SPEED_CDEG_S;
    app->failsafe_ms = PT_DEFAULT_FAILSAFE_MS;
    app->last_valid_ms = now_ms;
    app->last_tick_ms = now_ms;
    app->last_rx_ms = now_ms;
    app->reset_cause = reset_cause;
    if (reset_cause & PT_RESET_WDRF)
        app->flags |= PT_FLAG_WDT_RESET;
    /* Until a host speaks the head rests at the safe pose (position starts there, too). */
    app->flags |= PT_FLAG_FAILSAFE;
    command_safe_pose(app);
}

void pt_app_touch(pt_app_t *app, uint32_t now_ms)
{
    app->last_valid_ms = now_ms;
    app->flags |= PT_FLAG_HOST_SEEN;
}

uint8_t pt_app_set_target(pt_app_t *app, int16_t pan_cdeg, int16_t tilt_cdeg, uint16_t speed_cdeg_s,
                          uint32_t now_ms)
{
    pt_app_touch(app, now_ms);
    if (pan_cdeg < -PT_ABS_LIMIT_CDEG || pan_cdeg > PT_ABS_LIMIT_CDEG ||
        tilt_cdeg < -PT_ABS_LIMIT_CDEG || tilt_cdeg > PT_ABS_LIMIT_CDEG)
        return PT_E_RANGE;
    int16_t want[2] = {pan_cdeg, tilt_cdeg};
    uint8_t clamped = 0;
    for (uint8_t i = 0; i < 2; i++) {
        pt_axis_t *a = &app->axis[i];
        a->target_cdeg = clamp16(want[i], a->min_cdeg, a->max_cdeg);
        clamped |= (uint8_t)(a->target_cdeg != want[i]);
    }
    app->flags = (uint8_t)((app->flags & ~(PT_FLAG_CLAMPED | PT_FLAG_FAILSAFE)) |
                           (clamped ? PT_FLAG_CLAMPED : 0));
    /* A per-move speed may only slow the board down, never exceed its configured limit. */
    if (speed_cdeg_s == 0 || (app->speed_cdeg_s != 0 && speed_cdeg_s > app->speed_cdeg_s))
        app->move_speed_cdeg_s = app->speed_cdeg_s;
    else
        app->move_speed_cdeg_s = speed_cdeg_s;
    return PT_E_NONE;
}

uint8_t pt_app_set_limits(pt_app_t *app, int16_t pan_min, int16_t pan_max, int16_t tilt_min,
                          int16_t tilt_max, uint32_t now_ms)
{
    pt_app_touch(app, now_ms);
    int16_t lim[2][2] = {{pan_min, pan_max}, {tilt_min, tilt_max}};
    for (uint8_t i = 0; i < 2; i++) {
        if (lim[i][0] < -PT_ABS_LIMIT_CDEG || lim[i][1] > PT_ABS_LIMIT_CDEG || lim[i][0] >= lim[i][1])
            return PT_E_BAD_ARG;
    }
    for (uint8_t i = 0; i < 2; i++) {
        pt_axis_t *a = &app->axis[i];
        a->min_cdeg = lim[i][0];
        a->max_cdeg = lim[i][1];
        a->target_cdeg = clamp16(a->target_cdeg, a->min_cdeg, a->max_cdeg);
    }
    return PT_E_NONE;
}

uint8_t pt_app_set_speed(pt_app_t *app, uint16_t speed_cdeg_s, uint16_t failsafe_ms, uint32_t now_ms)
{
    pt_app_touch(app, now_ms);
    if (failsafe_ms < PT_MIN_FAILSAFE_MS || failsafe_ms > PT_MAX_FAILSAFE_MS)
        return PT_E_BAD_ARG;
    app->speed_cdeg_s = speed_cdeg_s;
    app->move_speed_cdeg_s = speed_cdeg_s;
    app->failsafe_ms = failsafe_ms;
    return PT_E_NONE;
}

int16_t pt_app_pos_cdeg(const pt_app_t *app, uint8_t axis)
{
    return (int16_t)(app->axis[axis & 1u].pos_mcdeg / 1000);
}

uint16_t pt_app_pulse_us(const pt_app_t *app, uint8_t axis)
{
    /* 90 deg = 9000 cdeg = 9e6 mcdeg <-> 1000 us; round to nearest. */
    int32_t pos = app->axis[axis & 1u].pos_mcdeg;
    int32_t off = (pos >= 0 ? pos + 4500 : pos - 4500) / 9000;
    int32_t us = PT_PULSE_CENTER_US + off;
    if (us < PT_PULSE_MIN_US)
        us = PT_PULSE_MIN_US;
    if (us > PT_PULSE_MAX_US)
        us = PT_PULSE_MAX_US;
    return (uint16_t)us;
}

void pt_app_tick(pt_app_t *app, uint32_t now_ms)
{
    uint32_t dt = now_ms - app->last_tick_ms; /* wraps correctly */
    app->last_tick_ms = now_ms;
    if (dt > PT_MAX_TICK_MS)
        dt = PT_MAX_TICK_MS;

    if (!(app->flags & PT_FLAG_FAILSAFE) && (uint32_t)(now_ms - app->last_valid_ms) > app->failsafe_ms) {
        app->flags |= PT_FLAG_FAILSAFE;
        command_safe_pose(app);
    }

    uint8_t moving = 0;
    for (uint8_t i = 0; i < 2; i++) {
        pt_axis_t *a = &app->axis[i];
        int32_t goal = (int32_t)a->target_cdeg * 1000;
        int32_t diff = goal - a->pos_mcdeg;
        int32_t step = (int32_t)app->move_speed_cdeg_s * (int32_t)dt; /* cdeg/s * ms = mcdeg */
        if (app->move_speed_cdeg_s == 0 || (diff <= step && diff >= -step))
            a->pos_mcdeg = goal;
        else
            a->pos_mcdeg += diff > 0 ? step : -step;
        moving |= (uint8_t)(a->pos_mcdeg != goal);
    }
    app->flags = (uint8_t)((app->flags & ~PT_FLAG_MOVING) | (moving ? PT_FLAG_MOVING : 0));
}

void pt_app_status(const pt_app_t *app, uint32_t now_ms, uint8_t *p)
{
    pt_put_i16(&p[0], pt_app_pos_cdeg(app, 0));
    pt_put_i16(&p[2], pt_app_pos_cdeg(app, 1));
    pt_put_i16(&p[4], app->axis[0].target_cdeg);
    pt_put_i16(&p[6], app->axis[1].target_cdeg);
    p[8] = app->flags;
    p[9] = app->reset_cause;
    pt_put_u32(&p[10], now_ms);
    pt_put_u16(&p[14], app->crc_errors);
    pt_put_u16(&p[16], app->frame_errors);
    pt_put_u16(&p[18], app->rx_overflows);
}

static uint16_t sat_inc(uint16_t v) { return v == 0xFFFFu ? v : (uint16_t)(v + 1u); }

static size_t reply_ack(uint8_t *out, size_t cap, const pt_frame_t *f)
{
    return pt_encode(out, cap, PT_RSP_ACK, f->seq, &f->type, 1);
}

static size_t reply_nack(uint8_t *out, size_t cap, const pt_frame_t *f, uint8_t err)
{
    uint8_t pl[2] = {f->type, err};
    return pt_encode(out, cap, PT_RSP_NACK, f->seq, pl, 2);
}

static size_t handle_frame(pt_app_t *app, const pt_frame_t *f, uint32_t now_ms, uint8_t *out, size_t cap)
{
    static const uint8_t expect_len[6] = {0xFF, 0, 6, 8, 4, 0}; /* by command type 0..5 */
    uint8_t err = PT_E_NONE;
    if (f->type == PT_CMD_DEBUG_HANG) {
#ifdef PT_ENABLE_DEBUG_CMDS
        pt_app_touch(app, now_ms);
        app->hang_requested = 1;
        return reply_ack(out, cap, f);
#else
        err = PT_E_UNKNOWN_CMD;
#endif
    } else if (f->type == 0 || f->type > PT_CMD_GET_STATUS) {
        err = PT_E_UNKNOWN_CMD;
    } else if (f->len != expect_len[f->type]) {
        err = PT_E_LENGTH;
    }
    if (err != PT_E_NONE) {
        app->frame_errors = sat_inc(app->frame_errors);
        return reply_nack(out, cap, f, err);
    }
    const uint8_t *p = f->payload;
    switch (f->type) {
    case PT_CMD_PING:
        pt_app_touch(app, now_ms);
        break;
    case PT_CMD_SET_TARGET:
        err = pt_app_set_target(app, pt_get_i16(&p[0]), pt_get_i16(&p[2]), pt_get_u16(&p[4]), now_ms);
        break;
    case PT_CMD_SET_LIMITS:
        err = pt_app_set_limits(app, pt_get_i16(&p[0]), pt_get_i16(&p[2]), pt_get_i16(&p[4]),
                                pt_get_i16(&p[6]), now_ms);
        break;
    case PT_CMD_SET_SPEED:
        err = pt_app_set_speed(app, pt_get_u16(&p[0]), pt_get_u16(&p[2]), now_ms);
        break;
    case PT_CMD_GET_STATUS: {
        pt_app_touch(app, now_ms);
        uint8_t st[PT_STATUS_LEN];
        pt_app_status(app, now_ms, st);
        return pt_encode(out, cap, PT_RSP_STATUS, f->seq, st, PT_STATUS_LEN);
    }
    default:
        break;
    }
    return err == PT_E_NONE ? reply_ack(out, cap, f) : reply_nack(out, cap, f, err);
}

size_t pt_app_rx_byte(pt_app_t *app, uint8_t byte, uint32_t now_ms, uint8_t *reply, size_t cap)
{
    /* A frame that stalls mid-way (lost bytes) is dropped instead of swallowing the next frame. */
    if (pt_parser_busy(&app->parser) && (uint32_t)(now_ms - app->last_rx_ms) > PT_RX_TIMEOUT_MS) {
        pt_parser_reset(&app->parser);
        app->frame_errors = sat_inc(app->frame_errors);
    }
    app->last_rx_ms = now_ms;
    pt_frame_t f;
    switch (pt_parser_feed(&app->parser, byte, &f)) {
    case PT_PARSE_FRAME:
        return handle_frame(app, &f, now_ms, reply, cap);
    case PT_PARSE_ERR_CRC:
        app->crc_errors = sat_inc(app->crc_errors);
        return reply_nack(reply, cap, &f, PT_E_CRC);
    case PT_PARSE_ERR_LENGTH:
        app->frame_errors = sat_inc(app->frame_errors);
        return 0;
    default:
        return 0;
    }
}
