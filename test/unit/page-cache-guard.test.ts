import { describe, expect, it } from 'vitest';

import { PageCacheGuard } from '../../src/fs/page-cache-guard.js';

describe('PageCacheGuard', () => {
  it('same rev shares page cache', () => {
    const guard = new PageCacheGuard();
    expect(guard.open('id:a', 'r1')).toBe(false);
    expect(guard.open('id:a', 'r1')).toBe(false);
  });

  it('other files are independent', () => {
    const guard = new PageCacheGuard();
    expect(guard.open('id:a', 'r1')).toBe(false);
    expect(guard.open('id:b', 'r2')).toBe(false);
  });

  it('new rev closed before uses page cache', () => {
    const guard = new PageCacheGuard();
    expect(guard.open('id:a', 'r1')).toBe(false);
    guard.close('id:a', 'r1', false);
    expect(guard.open('id:a', 'r2')).toBe(false);
  });

  it('new rev beside open old rev bypasses', () => {
    const guard = new PageCacheGuard();
    expect(guard.open('id:a', 'r1')).toBe(false);
    expect(guard.open('id:a', 'r2')).toBe(true);
    expect(guard.open('id:a', 'r2')).toBe(true);
  });

  it('mixed rev bypasses after old handle closes', () => {
    const guard = new PageCacheGuard();
    expect(guard.open('id:a', 'r1')).toBe(false);
    expect(guard.open('id:a', 'r2')).toBe(true);
    guard.close('id:a', 'r1', false);
    guard.close('id:a', 'r2', true);
    expect(guard.open('id:a', 'r2')).toBe(true);
  });

  it('next rev clears mixed mark', () => {
    const guard = new PageCacheGuard();
    guard.open('id:a', 'r1');
    guard.open('id:a', 'r2');
    guard.close('id:a', 'r1', false);
    guard.close('id:a', 'r2', true);
    expect(guard.open('id:a', 'r3')).toBe(false);
    expect(guard.open('id:a', 'r3')).toBe(false);
  });

  it('next rev beside old handle stays mixed', () => {
    const guard = new PageCacheGuard();
    guard.open('id:a', 'r1');
    guard.open('id:a', 'r2');
    // The r1 handle is still open and can refill the page cache with r1 pages.
    expect(guard.open('id:a', 'r3')).toBe(true);
    guard.close('id:a', 'r1', false);
    expect(guard.open('id:a', 'r3')).toBe(true);
  });

  it('counts handles of one rev', () => {
    const guard = new PageCacheGuard();
    guard.open('id:a', 'r1');
    guard.open('id:a', 'r1');
    guard.close('id:a', 'r1', false);
    // One r1 handle is still open.
    expect(guard.open('id:a', 'r2')).toBe(true);
  });

  it('direct_io close leaves counts alone', () => {
    const guard = new PageCacheGuard();
    expect(guard.open('id:a', 'r1')).toBe(false);
    // A direct_io handle of r1, such as an O_DIRECT open, which was never counted.
    guard.close('id:a', 'r1', true);
    expect(guard.open('id:a', 'r2')).toBe(true);
  });
});
