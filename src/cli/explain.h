/* `egress-inspector explain` and `egress-inspector diff` (src/cli/explain.c). */
#ifndef EI_CLI_EXPLAIN_H
#define EI_CLI_EXPLAIN_H

int ei_cmd_explain(int argc, char **argv);
int ei_cmd_diff(int argc, char **argv);

#endif
