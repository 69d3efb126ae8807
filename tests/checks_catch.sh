#!/usr/bin/env bash
# scripts/check-banned and scripts/check-layout must fail on each thing they exist to
# catch: a banned call, an unchecked allocation, a parser reaching into a cursor instead
# of reading through it; a parser including policy (directly or through a header), the
# core including io/, io/ including cli/.
set -u
checker=$1/check-banned
layout=$1/check-layout
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
expect_caught() { # name, C line
    mkdir -p "$dir/$1/parse"
    printf 'void f(void) {\n    %s\n}\n' "$2" > "$dir/$1/parse/x.c"
    if python3 "$checker" "$dir/$1" > /dev/null; then
        echo "not caught: $2"; fails=$((fails + 1))
    else
        echo "caught: $2"
    fi
}
expect_caught banned 'strcpy(a, b);'
expect_caught alloc 'p = malloc(4); p[0] = 1;'
expect_caught offset 'c._off++;'
expect_caught pointer 'uint8_t b = c->_ptr[0];'
expect_caught flag 'c._failed = true;'
mkdir -p "$dir/clean/parse"
printf 'void f(ei_cursor *c) {\n    ei_cursor_skip(c, 1);\n}\n' > "$dir/clean/parse/x.c"
python3 "$checker" "$dir/clean" > /dev/null || { echo "clean code refused"; fails=$((fails + 1)); }

layout_caught() { # name, file, include
    local r=$dir/layout-$1
    mkdir -p "$r/include/egress_inspector" "$r/src/parse" "$r/src/policy" "$r/src/io" "$r/src/cli"
    echo '#include "egress_inspector/common.h"' > "$r/include/egress_inspector/policy.h"
    touch "$r/include/egress_inspector/common.h" "$r/src/io/log.h" "$r/src/cli/hosts.h"
    echo '#include "egress_inspector/policy.h"' > "$r/include/egress_inspector/tls.h"
    echo "#include \"$3\"" > "$r/$2"
    if python3 "$layout" "$r" > /dev/null; then
        echo "not caught: $2 including $3"; fails=$((fails + 1))
    else
        echo "caught: $2 including $3"
    fi
}
layout_caught direct src/parse/x.c egress_inspector/policy.h
layout_caught through src/parse/x.c egress_inspector/tls.h
layout_caught core src/policy/x.c io/log.h
layout_caught edge src/io/x.c cli/hosts.h
mkdir -p "$dir/layout-clean/src/io" "$dir/layout-clean/src/parse"
echo '#include "parse/x.h"' > "$dir/layout-clean/src/io/x.c"
touch "$dir/layout-clean/src/parse/x.h"
python3 "$layout" "$dir/layout-clean" > /dev/null || { echo "clean layout refused"; fails=$((fails + 1)); }
echo "checks catch: $((11 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
