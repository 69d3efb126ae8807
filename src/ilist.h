/* Doubly linked lists threaded through an array by index, head newest: the LRU lists of
 * the flow table and of the DNS cache. Indexes, not pointers, so the array may move when
 * it grows. An element's links are a field of it; ei_iarray says where they are. */
#ifndef EI_ILIST_H
#define EI_ILIST_H

#include <stddef.h>
#include <stdint.h>

#define EI_ILIST_NONE UINT32_MAX

typedef struct {
    uint32_t prev, next;
} ei_ilink;

typedef struct {
    uint32_t head, tail; /* newest, oldest; EI_ILIST_NONE when empty */
} ei_ilist;

/* The array the list runs through: its base, its element size, and the offset of the
 * element's ei_ilink field (offsetof). */
typedef struct {
    void *base;
    size_t stride;
    size_t offset;
} ei_iarray;

static inline ei_ilink *ei_ilink_at(ei_iarray a, uint32_t i)
{
    return (ei_ilink *)(void *)((char *)a.base + (size_t)i * a.stride + a.offset);
}

static inline void ei_ilist_init(ei_ilist *l)
{
    l->head = l->tail = EI_ILIST_NONE;
}

static inline void ei_ilist_unlink(ei_ilist *l, ei_iarray a, uint32_t i)
{
    ei_ilink *x = ei_ilink_at(a, i);
    if (x->prev != EI_ILIST_NONE)
        ei_ilink_at(a, x->prev)->next = x->next;
    else
        l->head = x->next;
    if (x->next != EI_ILIST_NONE)
        ei_ilink_at(a, x->next)->prev = x->prev;
    else
        l->tail = x->prev;
}

static inline void ei_ilist_push(ei_ilist *l, ei_iarray a, uint32_t i)
{
    ei_ilink *x = ei_ilink_at(a, i);
    x->prev = EI_ILIST_NONE;
    x->next = l->head;
    if (l->head != EI_ILIST_NONE)
        ei_ilink_at(a, l->head)->prev = i;
    else
        l->tail = i;
    l->head = i;
}

#endif
