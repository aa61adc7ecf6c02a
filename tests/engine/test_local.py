import threading
import time

from openevolve_genesys.engine.local import LocalEngine


class RecordingEvaluator:
    def __init__(self):
        self.seen, self.lock, self.active, self.peak = [], threading.Lock(), 0, 0

    def evaluate(self, source, rungs, env=None, **options):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)
        with self.lock:
            self.active -= 1
            self.seen.append((source, dict(env)))
        if source == "boom":
            raise RuntimeError("boom")
        return source


def test_each_evaluation_runs_in_one_slot_with_that_slots_device():
    evaluator = RecordingEvaluator()
    engine = LocalEngine(evaluator, devices=["0", "1"])
    threads = [threading.Thread(target=engine.evaluate, args=(f"p{i}", ["r0"])) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.slots == 2 and evaluator.peak == 2  # never more than the slots at once
    assert {env["CUDA_VISIBLE_DEVICES"] for _, env in evaluator.seen} == {"0", "1"}


def test_a_failing_evaluation_gives_its_slot_back():
    evaluator = RecordingEvaluator()
    engine = LocalEngine(evaluator, devices=["cpu"])
    try:
        engine.evaluate("boom", ["r0"])
    except RuntimeError:
        pass
    assert engine.evaluate("fine", ["r0"]) == "fine"
