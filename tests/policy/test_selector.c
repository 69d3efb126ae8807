/* Kubernetes label selectors: the grammar kubectl -l takes (valid and invalid strings in
 * the manner of apimachinery's labels tests), and what each operator selects. */
#include <string.h>

#include "egress_inspector/selector.h"
#include "unit.h"

static bool parses(const char *text)
{
    char err[160];
    ei_selector *s = ei_selector_parse(text, strlen(text), err, sizeof err);
    ei_selector_free(s);
    return s != NULL;
}

static void test_grammar(void)
{
    static const char *const valid[] = {
        "", " ", "x=a", "x = a", "x=a,y=b,z=c", "x==a", "x!=a", "x=a,y!=b", "x=,z= ", "x= ,z= ",
        "!x", "x", "x,y", "x>1", "x<5", "x>1,z<5", "x>-3", "x in (a)", "x in (a,b,c)", "x in ( a , b )",
        "x notin (a)", "x notin (a,b),y", "app.kubernetes.io/name=api", "example.com/key in (v1,v2)",
        "kubernetes.io/metadata.name=payments", "x=a.b-c_d", "tier in (backend,worker),!debug",
        "a1234567890123456789012345678901234567890123456789012345678901b=x",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        if (!parses(valid[i]))
            fprintf(stderr, "should parse: '%s'\n", valid[i]);
        CU_ASSERT(parses(valid[i]));
    }
    static const char *const invalid[] = {
        "x=a||y=b", "x==a==b", "!x=a", "x<a", "x>", "x in (", "x in ()", "x in (a", "x in a", "x notin",
        "in", "=a", "x=a,", ",x=a", "x=a b", "-x=a", "x-=a", "Example.com/x=a", "/x=a", "x/=a",
        "x=-a", "x!a", "x in (a,)", "!", "x=a,,y=b",
        "a12345678901234567890123456789012345678901234567890123456789012b=x", /* a 64-character name */
        "x=a12345678901234567890123456789012345678901234567890123456789012b", /* a 64-character value */
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        if (parses(invalid[i]))
            fprintf(stderr, "should not parse: '%s'\n", invalid[i]);
        CU_ASSERT_FALSE(parses(invalid[i]));
    }
    char err[160] = "";
    CU_ASSERT_PTR_NULL(ei_selector_parse("x in ()", 7, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "at 7"));
}

static bool selects(const char *text, const char *labels)
{
    ei_label l[8];
    size_t n = 0;
    /* labels: "k=v k=v ..." */
    for (const char *p = labels; *p != '\0' && n < 8;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        if (end == NULL)
            end = p + strlen(p);
        l[n].key = (ei_view){ (const uint8_t *)p, (size_t)(eq - p) };
        l[n].value = (ei_view){ (const uint8_t *)eq + 1, (size_t)(end - eq - 1) };
        n++;
        p = *end ? end + 1 : end;
    }
    ei_selector *s = ei_selector_parse(text, strlen(text), NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    bool m = ei_selector_matches(s, l, n);
    ei_selector_free(s);
    return m;
}

static void test_matching(void)
{
    CU_ASSERT(selects("", ""));
    CU_ASSERT(selects("", "app=api"));
    CU_ASSERT(selects("app=api", "app=api tier=backend"));
    CU_ASSERT_FALSE(selects("app=api", "app=web"));
    CU_ASSERT_FALSE(selects("app=api", ""));
    CU_ASSERT(selects("app!=api", ""));
    CU_ASSERT(selects("app!=api", "app=web"));
    CU_ASSERT_FALSE(selects("app!=api", "app=api"));
    CU_ASSERT(selects("tier in (backend,worker)", "tier=worker"));
    CU_ASSERT_FALSE(selects("tier in (backend,worker)", "tier=frontend"));
    CU_ASSERT_FALSE(selects("tier in (backend,worker)", ""));
    CU_ASSERT(selects("tier notin (backend,worker)", ""));
    CU_ASSERT(selects("tier notin (backend,worker)", "tier=frontend"));
    CU_ASSERT_FALSE(selects("tier notin (backend,worker)", "tier=backend"));
    CU_ASSERT(selects("debug", "debug="));
    CU_ASSERT_FALSE(selects("!debug", "debug=true"));
    CU_ASSERT(selects("!debug", "app=api"));
    CU_ASSERT(selects("x>1", "x=2"));
    CU_ASSERT_FALSE(selects("x>1", "x=1"));
    CU_ASSERT_FALSE(selects("x>1", "x=a"));
    CU_ASSERT_FALSE(selects("x<1", ""));
    CU_ASSERT(selects("app=api,tier in (backend,worker),!debug", "app=api tier=backend"));
    CU_ASSERT_FALSE(selects("app=api,tier in (backend,worker),!debug", "app=api tier=backend debug=1"));
    CU_ASSERT(selects("x=", "x="));
    CU_ASSERT_FALSE(selects("x=", "x=a"));
    CU_ASSERT(selects("kubernetes.io/metadata.name=payments", "kubernetes.io/metadata.name=payments"));
}

int main(void)
{
    static const ei_unit_case cases[] = {
        EI_CASE(test_grammar),
        EI_CASE(test_matching),
    };
    EI_SUITE("selector", cases);
    return ei_unit_run();
}
