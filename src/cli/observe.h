/* `egress-inspector observe` and `egress-inspector status`: clients of a running daemon's
 * control socket (run --control PATH; the protocol is io/control.h's). */
#ifndef EI_CLI_OBSERVE_H
#define EI_CLI_OBSERVE_H

/* argv[0] is "observe" or "status", the options follow. Returns the exit status: 0, 1
 * when the socket cannot be reached or the daemon answers with an error, 2 for bad
 * options. */
int ei_cmd_observe(int argc, char **argv);

#endif
