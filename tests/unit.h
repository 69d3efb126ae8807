/* Shared by the CUnit test programs: a main() is its suites, then ei_unit_run(), which
 * runs them verbosely and turns the outcome into the exit status CTest reads:
 *
 *     int main(void)
 *     {
 *         EI_SUITE("http", cases);
 *         return ei_unit_run();
 *     }
 */
#ifndef EI_TESTS_UNIT_H
#define EI_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <stdlib.h>

typedef struct {
    const char *name;
    CU_TestFunc fn;
} ei_unit_case;

#define EI_CASE(fn) { #fn, fn }

static inline void ei_unit_suite(const char *name, const ei_unit_case *cases, size_t n)
{
    if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS)
        exit(2);
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    if (suite == NULL)
        exit(2);
    for (size_t i = 0; i < n; i++)
        if (CU_add_test(suite, cases[i].name, cases[i].fn) == NULL)
            exit(2);
}

#define EI_SUITE(name, cases) ei_unit_suite(name, cases, sizeof cases / sizeof cases[0])

static inline int ei_unit_run(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return failures == 0 && run > 0 ? 0 : 1;
}

#endif
