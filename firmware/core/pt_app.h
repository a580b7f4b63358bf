/*
 * pt_app.h - the board's behaviour, independent of the hardware: command handling, per-axis
 * limits, slew-rate limiting, failsafe, angle -> pulse width.
 *
 * Plain C99 without AVR headers so that the Uno firmware, the micro-ROS sketch and the host tests
 * all run this same code. The hardware layer only feeds bytes/time in and reads pulse widths out.
 */
#ifndef PT_APP_H
#define PT_APP_H

#include <stddef.h>
#include <stdint.h>

#include "pt_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PT_AXIS_PAN 0u
#define PT_AXIS_TILT 1u

#define PT_ABS_LIMIT_CDEG 9000      /* +-90 deg: the servo's travel, 500..2500 us */
#define PT_PULSE_CENTER_US 1500
#define PT_PULSE_MIN_US 500
#define PT_PULSE_MAX_US 2500

#define PT_DEFAULT_SPEED_CDEG_S 30000u /* 300 deg/s */
#define PT_DEFAULT_FAILSAFE_MS 1000u
#define PT_MIN_FAILSAFE_MS 50u
#define PT_MAX_FAILSAFE_MS 60000u
#define PT_MAX_TICK_MS 100u          /* longer gaps are treated as 100 ms (no jumps after stalls) */
#define PT_RX_TIMEOUT_MS 50u         /* a frame must not pause longer than this between bytes */

/* Status flags (STATUS.flags). */
#define PT_FLAG_FAILSAFE 0x01u  /* the failsafe pose is commanded (host silent too long) */
#define PT_FLAG_MOVING 0x02u    /* an axis is still slewing towards its target */
#define PT_FLAG_CLAMPED 0x04u   /* the last target was clamped to the configured limits */
#define PT_FLAG_WDT_RESET 0x08u /* the last reset was caused by the watchdog */
#define PT_FLAG_HOST_SEEN 0x10u /* a valid frame has arrived since boot */

/* MCUSR-compatible reset cause bits (the AVR layer passes MCUSR through). */
#define PT_RESET_WDRF 0x08u

#define PT_STATUS_LEN 20u

typedef struct {
    int16_t min_cdeg;
    int16_t max_cdeg;
    int16_t target_cdeg;
    int32_t pos_mcdeg; /* position in 1/1000 centidegree: exact integer slew at any dt */
} pt_axis_t;

typedef struct {
    pt_axis_t axis[2];
    uint16_t speed_cdeg_s;      /* configured slew limit (0 = unlimited) */
    uint16_t move_speed_cdeg_s; /* limit of the current move (<= configured) */
    uint16_t failsafe_ms;
    uint32_t last_valid_ms; /* time of the last valid frame (or micro-ROS command) */
    uint32_t last_tick_ms;
    uint32_t last_rx_ms;
    uint8_t flags;
    uint8_t reset_cause;
    uint8_t hang_requested; /* set by DEBUG_HANG (test builds); the hardware layer then hangs */
    uint16_t crc_errors;
    uint16_t frame_errors;
    uint16_t rx_overflows;
    pt_parser_t parser;
} pt_app_t;

void pt_app_init(pt_app_t *app, uint32_t now_ms, uint8_t reset_cause);

/* Feed one received byte. When it completes a frame that needs a reply, the reply frame is written
 * to reply (cap >= PT_MAX_FRAME) and its length returned; otherwise 0. */
size_t pt_app_rx_byte(pt_app_t *app, uint8_t byte, uint32_t now_ms, uint8_t *reply, size_t cap);

/* Advance slew and failsafe to now_ms; call at least every 20 ms. */
void pt_app_tick(pt_app_t *app, uint32_t now_ms);

/* Pulse width for an axis, 500..2500 us, from its current (slewed) position. */
uint16_t pt_app_pulse_us(const pt_app_t *app, uint8_t axis);

/* The operations behind the commands, for transports that are not the serial protocol
 * (micro-ROS). Each returns a pt_error code; PT_E_NONE on success. Each counts as host activity. */
uint8_t pt_app_set_target(pt_app_t *app, int16_t pan_cdeg, int16_t tilt_cdeg, uint16_t speed_cdeg_s,
                          uint32_t now_ms);
uint8_t pt_app_set_limits(pt_app_t *app, int16_t pan_min, int16_t pan_max, int16_t tilt_min,
                          int16_t tilt_max, uint32_t now_ms);
uint8_t pt_app_set_speed(pt_app_t *app, uint16_t speed_cdeg_s, uint16_t failsafe_ms, uint32_t now_ms);
void pt_app_touch(pt_app_t *app, uint32_t now_ms);

/* Current position of an axis in centidegrees (rounded towards zero). */
int16_t pt_app_pos_cdeg(const pt_app_t *app, uint8_t axis);

/* Fill the PT_STATUS_LEN-byte STATUS payload. */
void pt_app_status(const pt_app_t *app, uint32_t now_ms, uint8_t *payload);

#ifdef __cplusplus
}
#endif
#endif
