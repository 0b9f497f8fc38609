/// A callback kept where it can be replaced under a lock (`Mutex<Observer<T>?>`).
///
/// Never keep a bare closure as a generic container's value (`Mutex<(@Sendable (T) -> Void)?>`):
/// every `inout` access through the container's generic API converts the function between its
/// concrete and its most general representation and writes the converted value back, so each access
/// wraps the stored closure in one more pair of reabstraction thunks. A closure read once per
/// request or per scan grew by one call level each time until the stack overflowed (issue 17).
/// A struct's stored field keeps one representation, so it crosses `inout` unchanged.
package struct Observer<Argument>: Sendable {
    package let notify: @Sendable (Argument) -> Void

    package init(_ notify: @escaping @Sendable (Argument) -> Void) {
        self.notify = notify
    }
}
