"""The executor's kernel manager and client: ready without an idle wait, a kill noticed at once."""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import zmq
from jupyter_client.asynchronous import AsyncKernelClient

from mlscale_lab.harness._kernels import (
    IOPUB_CONNECT_S,
    KILL_POLL_S,
    RECONNECT_MS,
    kernel_manager_class,
)
from mlscale_lab.harness.executor import KernelLaunch


def _manager(tmp_path):
    return kernel_manager_class(KernelLaunch(cwd=tmp_path, env=dict(os.environ)))(kernel_name="python3")


def test_ready_needs_no_quiet_spell_on_iopub_and_iopub_works_after_it(tmp_path):
    km = _manager(tmp_path)

    async def go():
        await km.start_kernel(cwd=str(tmp_path), env=dict(os.environ))
        kc = km.client()
        kc.start_channels()
        try:
            # a kernel still binding its sockets is tried again within milliseconds
            for channel in (kc.shell_channel, kc.iopub_channel, kc.control_channel):
                assert channel.socket.getsockopt(zmq.RECONNECT_IVL) == RECONNECT_MS
            await kc.wait_for_ready(timeout=60)
            ours, theirs = [], []
            for _ in range(3):  # interleaved, on the same live kernel
                t = time.perf_counter()
                await kc.wait_for_ready(timeout=60)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                await AsyncKernelClient.wait_for_ready(kc, timeout=60)  # jupyter_client's own
                theirs.append(time.perf_counter() - t)
            # jupyter_client waits for IOPub to stay quiet for IOPUB_CONNECT_S after the reply
            assert min(theirs) >= IOPUB_CONNECT_S
            assert statistics.median(ours) < statistics.median(theirs) - IOPUB_CONNECT_S / 2, (ours, theirs)
            # and IOPub carries an execution's output once ready
            msg_id = kc.execute("print('here')")
            seen = []
            while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in seen):
                m = await kc.iopub_channel.get_msg(timeout=30)
                if m["parent_header"].get("msg_id") == msg_id:
                    seen.append(m)
            assert any(m["msg_type"] == "stream" and m["content"]["text"] == "here\n" for m in seen)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
        assert not await km.is_alive()

    asyncio.run(go())


def test_a_killed_kernel_is_polled_every_few_milliseconds_not_every_tenth_of_a_second(tmp_path):
    km = _manager(tmp_path)
    answers = iter([True] * 10 + [False])

    async def alive():
        return next(answers)

    km._async_is_alive = alive  # a kernel that takes ten polls to die

    async def wait():
        t = time.perf_counter()
        await km._async_wait(pollinterval=0.1)  # jupyter_client's own shutdown asks for 0.1 s
        return time.perf_counter() - t

    took = asyncio.run(wait())
    assert took < 10 * 0.1 / 2, took  # 1 s at jupyter_client's interval; 50 ms at ours
    assert KILL_POLL_S <= 0.01
