/*
 * pan_tilt_microros.ino - micro-ROS pan/tilt board for an ESP32 (micro_ros_arduino).
 *
 * Subscribes to `pan_tilt/command` (emotion_msgs/PanTilt, published by tracker_node with
 * transport:=microros) and drives the two servos with the SAME safety logic as the Uno firmware:
 * firmware/core/pt_app.c (limits, clamp/refuse, slew-rate limiting, failsafe pose), copied into
 * src/ by `make -C firmware microros-sketch`, so the host tests of the core cover this board too.
 *
 * Safety:
 *   - failsafe: no PanTilt for PT failsafe_ms (1 s) -> safe pose (pt_app_tick), also while the
 *     agent is unreachable;
 *   - hardware watchdog: the ESP32 task watchdog (2 s) is fed only from loop();
 *   - agent loss: the session is torn down and re-created when the agent answers pings again.
 *
 * NOT COMPILED in this workspace (no ESP32 toolchain / micro_ros_arduino here); see README.md.
 */
#include <Arduino.h>
#include <esp_task_wdt.h>
#include <micro_ros_arduino.h>
#include <rcl/rcl.h>
#include <rclc/executor.h>
#include <rclc/rclc.h>
#include <rmw_microros/rmw_microros.h>

#include <emotion_msgs/msg/pan_tilt.h> /* needs the custom-message library build, see README */

extern "C" {
#include "src/pt_app.h"
}

/* ---- board configuration ---------------------------------------------------------------- */
static const int PAN_PIN = 18;
static const int TILT_PIN = 19;
static const int PWM_BITS = 16;          /* LEDC resolution: 20 ms / 65536 = 0.305 us */
static const int PWM_HZ = 50;
static const int16_t PAN_MIN_CDEG = -8000, PAN_MAX_CDEG = 8000;
static const int16_t TILT_MIN_CDEG = -3000, TILT_MAX_CDEG = 4500;
static const uint16_t SPEED_CDEG_S = 30000; /* 300 deg/s */
static const uint16_t FAILSAFE_MS = 1000;
static const uint32_t WDT_TIMEOUT_S = 2;

static pt_app_t app;
static rcl_allocator_t allocator;
static rclc_support_t support;
static rcl_node_t node;
static rcl_subscription_t sub;
static rclc_executor_t executor;
static emotion_msgs__msg__PanTilt msg;
static uint32_t refused; /* commands outside +-90 deg (NACK RANGE on the serial board) */

enum AgentState { WAITING_AGENT, AGENT_AVAILABLE, AGENT_CONNECTED, AGENT_DISCONNECTED };
static AgentState state = WAITING_AGENT;

static void servo_write_us(int pin_channel, uint16_t us)
{
    /* duty = us / 20000 us * 2^16 */
    uint32_t duty = ((uint32_t)us * ((1u << PWM_BITS) - 1u)) / 20000u;
    ledcWrite(pin_channel, duty);
}

static int16_t rad_to_cdeg(float rad)
{
    float cdeg = rad * (18000.0f / 3.14159265f);
    if (!(cdeg == cdeg)) /* NaN: treat as out of range */
        return INT16_MIN;
    if (cdeg > 32767.0f)
        return INT16_MAX;
    if (cdeg < -32768.0f)
        return INT16_MIN;
    return (int16_t)lroundf(cdeg);
}

static void on_pan_tilt(const void *msgin)
{
    const emotion_msgs__msg__PanTilt *m = (const emotion_msgs__msg__PanTilt *)msgin;
    float v = m->max_velocity * (18000.0f / 3.14159265f);
    uint16_t speed = (v > 0.0f && v < 65535.0f) ? (uint16_t)v : 0u;
    if (pt_app_set_target(&app, rad_to_cdeg(m->pan), rad_to_cdeg(m->tilt), speed, millis()) != PT_E_NONE)
        refused++;
}

static bool create_entities()
{
    allocator = rcl_get_default_allocator();
    if (rclc_support_init(&support, 0, NULL, &allocator) != RCL_RET_OK)
        return false;
    if (rclc_node_init_default(&node, "pan_tilt_board", "", &support) != RCL_RET_OK)
        return false;
    /* reliable, like tracker_node's publisher (depth 10) */
    if (rclc_subscription_init_default(&sub, &node, ROSIDL_GET_MSG_TYPE_SUPPORT(emotion_msgs, msg, PanTilt),
                                       "pan_tilt/command") != RCL_RET_OK)
        return false;
    executor = rclc_executor_get_zero_initialized_executor();
    if (rclc_executor_init(&executor, &support.context, 1, &allocator) != RCL_RET_OK)
        return false;
    return rclc_executor_add_subscription(&executor, &sub, &msg, &on_pan_tilt, ON_NEW_DATA) == RCL_RET_OK;
}

static void destroy_entities()
{
    rmw_context_t *rmw_context = rcl_context_get_rmw_context(&support.context);
    (void)rmw_uros_set_context_entity_destroy_session_timeout(rmw_context, 0);
    (void)rcl_subscription_fini(&sub, &node);
    (void)rclc_executor_fini(&executor);
    (void)rcl_node_fini(&node);
    (void)rclc_support_fini(&support);
}

void setup()
{
    pt_app_init(&app, millis(), 0);
    pt_app_set_limits(&app, PAN_MIN_CDEG, PAN_MAX_CDEG, TILT_MIN_CDEG, TILT_MAX_CDEG, millis());
    pt_app_set_speed(&app, SPEED_CDEG_S, FAILSAFE_MS, millis());
    app.flags |= PT_FLAG_FAILSAFE; /* boot at the safe pose until a command arrives */

    ledcSetup(0, PWM_HZ, PWM_BITS);
    ledcSetup(1, PWM_HZ, PWM_BITS);
    ledcAttachPin(PAN_PIN, 0);
    ledcAttachPin(TILT_PIN, 1);
    servo_write_us(0, pt_app_pulse_us(&app, PT_AXIS_PAN));
    servo_write_us(1, pt_app_pulse_us(&app, PT_AXIS_TILT));

    esp_task_wdt_init(WDT_TIMEOUT_S, true); /* panic + reboot when loop() stops feeding it */
    esp_task_wdt_add(NULL);

    set_microros_transports(); /* USB serial; use set_microros_wifi_transports(...) for Wi-Fi */
}

void loop()
{
    esp_task_wdt_reset();
    uint32_t now = millis();
    switch (state) {
    case WAITING_AGENT:
        if (rmw_uros_ping_agent(50, 1) == RMW_RET_OK)
            state = AGENT_AVAILABLE;
        break;
    case AGENT_AVAILABLE:
        state = create_entities() ? AGENT_CONNECTED : WAITING_AGENT;
        if (state == WAITING_AGENT)
            destroy_entities();
        break;
    case AGENT_CONNECTED:
        if ((now / 500u) % 2u == 0u && rmw_uros_ping_agent(20, 1) != RMW_RET_OK) {
            state = AGENT_DISCONNECTED;
            break;
        }
        rclc_executor_spin_some(&executor, RCL_MS_TO_NS(5));
        break;
    case AGENT_DISCONNECTED:
        destroy_entities();
        state = WAITING_AGENT;
        break;
    }
    /* Same logic as the Uno: slew towards the target, failsafe after FAILSAFE_MS of silence. */
    pt_app_tick(&app, millis());
    servo_write_us(0, pt_app_pulse_us(&app, PT_AXIS_PAN));
    servo_write_us(1, pt_app_pulse_us(&app, PT_AXIS_TILT));
}
