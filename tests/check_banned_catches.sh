#!/usr/bin/env bash
# scripts/check-banned must fail on each thing it exists to catch: a banned call, an
# unchecked allocation, and a parser reaching into a cursor instead of reading through it.
set -u
checker=$1
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
echo "check-banned catches: $((6 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
