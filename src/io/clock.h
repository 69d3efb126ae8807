/* The daemon's two clocks. The pipeline, the flow table and the DNS cache run on the
 * monotonic clock, so that a step of the wall clock (NTP, an operator's `date -s`) can
 * neither stretch a DNS wait past its timeout nor expire every flow at once. Wall time is
 * for the stamps of log lines only; the daemon converts a pipeline time to it with the
 * offset between the two clocks, read once per loop. */
#ifndef EI_IO_CLOCK_H
#define EI_IO_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t ei_clock_ns(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pipeline time. */
static inline uint64_t ei_mono_ns(void)
{
    return ei_clock_ns(CLOCK_MONOTONIC);
}

/* Log stamps. */
static inline uint64_t ei_wall_ns(void)
{
    return ei_clock_ns(CLOCK_REALTIME);
}

#endif
