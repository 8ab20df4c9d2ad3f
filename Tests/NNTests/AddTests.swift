import TestSupport
import Testing
import Tensors
@testable import NN

struct AddTests {
    typealias K = LayerTestKit

    @Test(arguments: LayerTestKit.layouts)
    func mixedLayouts(layout: Layout) {
        let a = randomTensor([2, 16, 3, 3], seed: 1), b = randomTensor([2, 16, 3, 3], seed: 2)
        var expected = a.array
        for i in expected.indices { expected[i] += b[i] }
        let y = add(a.toLayout(layout), b)
        #expect(y.layout == layout && y.plainArray == expected)
        let acc = a.toLayout(layout).copy()
        addInPlace(acc, b.toLayout(.blocked(8)))
        #expect(acc.layout == layout && acc.plainArray == expected)
    }
}
